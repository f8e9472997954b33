/**
 * The Slack adapter's pure parts: Block Kit within Slack's limits, the modal generated from a zod
 * schema, the identity rules, the manifests, and start-up without Slack configuration.
 */
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { approvalBlocks, LIMITS, renderRunMessage } from '../bots/slack/blocks.ts';
import { renderApprovalMessage } from '../bots/slack/approvals.ts';
import type { ApprovalRecord } from '../src/approvals/types.ts';
import { toApprovalView, type ApprovalView } from '../src/views/approval-view.ts';
import { principalFromCommand, principalFromInteraction } from '../bots/slack/identity.ts';
import { createSlackAdapter } from '../bots/slack/index.ts';
import { paramsModal, readSubmission, slackFieldErrors } from '../bots/slack/modal.ts';
import { createLogger } from '../src/common/log.ts';
import { fieldErrors } from '../src/views/form.ts';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import type { RunView, StepView } from '../src/views/run-view.ts';

const approvalView = (over: Partial<ApprovalView>): ApprovalView => ({
  id: 'apr_1',
  runId: 'run_1',
  workflow: 'demo',
  step: 'pay',
  summary: 'Pay the invoice',
  status: 'pending',
  tool: null,
  params: null,
  risk: null,
  rationale: null,
  requestedBy: null,
  approvers: 'finance',
  required: 1,
  approvals: 0,
  decisions: [],
  deadline: null,
  endReason: null,
  eligible: [],
  allowSelfApproval: false,
  ...over,
});

const baseView = (over: Partial<RunView> = {}): RunView => ({
  runId: 'run_01test',
  workflow: 'demo',
  version: 1,
  status: 'running',
  requester: { platform: 'slack', tenant: 'T1', user: 'U1' },
  input: {},
  output: null,
  createdAt: new Date('2026-01-01T00:00:00Z'),
  finishedAt: null,
  steps: [],
  waiting: null,
  error: null,
  cancelRequested: false,
  actions: ['run.cancel'],
  approvals: [],
  ...over,
});

function textLengths(blocks: unknown[]): number[] {
  const out: number[] = [];
  const walk = (v: unknown, key?: string) => {
    if (typeof v === 'string' && key === 'text') out.push(v.length);
    else if (Array.isArray(v)) v.forEach((x) => walk(x));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  walk(blocks);
  return out;
}

describe('Block Kit rendering', () => {
  it('folds older steps and truncates long texts so a long run stays within Slack limits', () => {
    const steps: StepView[] = Array.from({ length: 500 }, (_, i) => ({
      idx: i,
      name: `step-${i}-${'x'.repeat(200)}`,
      kind: 'step',
      status: i === 499 ? 'failed' : 'succeeded',
      attempts: 1,
      durationMs: 12,
      error: i === 499 ? 'E'.repeat(20_000) : null,
    }));
    const m = renderRunMessage(baseView({ status: 'failed', steps, error: { step: 'step-499', message: 'E'.repeat(20_000) }, actions: ['run.retry'] }));
    expect(m.blocks.length).toBeLessThanOrEqual(LIMITS.blocksPerMessage);
    expect(Math.max(...textLengths(m.blocks))).toBeLessThanOrEqual(LIMITS.sectionText);
    const total = textLengths(m.blocks).reduce((a, b) => a + b, 0);
    expect(total).toBeLessThan(13_000);
    expect(JSON.stringify(m.blocks)).toContain('480 earlier steps');
    expect(JSON.stringify(m.blocks)).toContain('"action_id":"run.retry"');
    expect(m.text.length).toBeLessThanOrEqual(LIMITS.fallbackText);
  });

  it('renders the same view to the same JSON (the outbox relies on it)', () => {
    expect(JSON.stringify(renderRunMessage(baseView()))).toBe(JSON.stringify(renderRunMessage(baseView())));
  });

  it('renders a pending approval with Approve and Reject carrying only the approval id, and a decided one without buttons', () => {
    const pending = approvalBlocks(
      approvalView({ id: 'apr_1', step: 'pay', status: 'pending', approvers: 'finance', tool: 'http.post', params: { amount: 1200 } }),
    );
    const json = JSON.stringify(pending);
    expect(json).toContain('"action_id":"approval.approve"');
    expect(json).toContain('"action_id":"approval.reject"');
    expect(json).toContain('"value":"apr_1"');
    const decided = approvalBlocks(
      approvalView({
        id: 'apr_1',
        step: 'pay',
        status: 'approved',
        approvers: 'finance',
        approvals: 1,
        decisions: [
          {
            principal: 'slack:T1:U9',
            by: { platform: 'slack', tenant: 'T1', user: 'U9' },
            decision: 'approve',
            comment: null,
            at: new Date('2026-01-01T10:00:00Z'),
          },
        ],
      }),
    );
    expect(JSON.stringify(decided)).not.toContain('approval.approve');
    expect(JSON.stringify(decided)).toContain('<@U9>');
  });
});

describe('the parameters modal from a zod schema', () => {
  const wf = defineWorkflow({
    name: 'order',
    version: 2,
    description: 'Order things',
    input: z.object({
      item: z.string().min(2).describe('What to order'),
      quantity: z.coerce.number().int().positive().default(1),
      speed: z.enum(['normal', 'express']).optional(),
      gift: z.boolean().default(false),
    }),
    run: async () => null,
  }) as unknown as WorkflowDefinition;

  it('has one input per field, prefilled with what was given or the default, optional where the schema allows', () => {
    const view = paramsModal(wf, { item: 'paper' }, undefined, { channel: 'C1', threadTs: null });
    const inputs = view.blocks.filter((b) => b.type === 'input') as unknown as { block_id: string; optional: boolean; element: Record<string, unknown> }[];
    expect(inputs.map((b) => [b.block_id, b.optional])).toEqual([
      ['item', false],
      ['quantity', true],
      ['speed', true],
      ['gift', true],
    ]);
    expect(inputs[0]?.element.initial_value).toBe('paper');
    expect(inputs[1]?.element.initial_value).toBe('1');
    expect(inputs[2]?.element.type).toBe('static_select');
    expect(view.title.text.length).toBeLessThanOrEqual(24);
    expect(JSON.parse(view.private_metadata ?? '')).toEqual({ workflow: 'order', version: 2, channel: 'C1', threadTs: null });
  });

  it('maps schema issues to the inputs they belong to', () => {
    const values = readSubmission({ item: { value: { value: 'x' } }, quantity: { value: { value: '0' } } });
    const parsed = wf.input.safeParse({ item: values.item, quantity: values.quantity });
    expect(parsed.success).toBe(false);
    if (!parsed.success) expect(Object.keys(slackFieldErrors(wf, fieldErrors(parsed.error))).sort()).toEqual(['item', 'quantity']);
  });
});

describe('Slack identity', () => {
  it('takes the actor from the payload: user.team_id in Slack Connect, the enterprise for org-wide installs', () => {
    expect(principalFromInteraction({ user: { id: 'U1', team_id: 'THOME' }, team: { id: 'THOST' } })).toMatchObject({ tenant: 'THOME', user: 'U1' });
    expect(principalFromInteraction({ user: { id: 'U1' }, team: null, enterprise: { id: 'E1' }, is_enterprise_install: true })).toMatchObject({ tenant: 'E1' });
    expect(principalFromCommand({ user_id: 'U2', team_id: 'T2', enterprise_id: 'E2', is_enterprise_install: 'true' })).toMatchObject({ tenant: 'E2' });
    expect(principalFromCommand({ user_id: 'U2', team_id: 'T2', enterprise_id: 'E2', is_enterprise_install: 'false' })).toMatchObject({ tenant: 'T2' });
  });
});

describe('manifests', () => {
  for (const file of ['manifest.json', 'manifest.socket-mode.json']) {
    it(`${file} declares /tollgate, interactivity, the events we handle and minimal bot scopes`, () => {
      const m = JSON.parse(readFileSync(new URL(`../manifests/slack/${file}`, import.meta.url), 'utf8'));
      expect(m.features.slash_commands.map((c: { command: string }) => c.command)).toEqual(['/tollgate']);
      expect(m.settings.interactivity.is_enabled).toBe(true);
      expect(m.settings.event_subscriptions.bot_events.sort()).toEqual(['app_home_opened', 'app_mention', 'message.im']);
      expect(m.oauth_config.scopes.bot.sort()).toEqual([
        'app_mentions:read',
        'chat:write',
        'chat:write.public',
        'commands',
        'im:history',
        'im:write',
        'users:read',
      ]);
      expect(m.features.app_home.home_tab_enabled).toBe(true);
      const socket = file.includes('socket');
      expect(m.settings.socket_mode_enabled).toBe(socket);
      if (!socket) {
        expect(m.settings.event_subscriptions.request_url).toMatch(/\/slack\/events$/);
        expect(m.settings.interactivity.request_url).toMatch(/\/slack\/events$/);
        expect(m.features.slash_commands[0].url).toMatch(/\/slack\/events$/);
      }
    });
  }
});

describe('start-up without Slack', () => {
  it('says which variables to set and builds no adapter', () => {
    const lines: string[] = [];
    const log = createLogger({
      level: 'info',
      format: 'json',
      destination: new Writable({
        write: (c, _e, cb) => {
          lines.push(String(c));
          cb();
        },
      }),
    });
    const adapter = createSlackAdapter({
      config: { signingSecret: undefined, botToken: undefined, appToken: undefined, apiUrl: undefined },
      core: () => undefined as never,
      log,
    });
    expect(adapter).toBeUndefined();
    expect(lines.join('')).toContain('SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN');
  });
});

describe('approval copies after an escalation', () => {
  const escalated = {
    id: 'apr_1',
    runId: 'run_1',
    workflow: 'purchase-order',
    runStatus: 'waiting',
    stepIdx: 1,
    name: 'finance approval',
    status: 'pending',
    summary: 'Buy laptops from Acme for 5000 EUR',
    params: { vendor: 'Acme', amount: 5000 },
    paramsHash: 'abc',
    risk: 'high',
    rationale: null,
    tool: null,
    toolInput: null,
    requester: 'slack:T1:U_REQ',
    approvers: 'group cfo',
    eligible: ['slack:T1:U_CFO'],
    quorum: 'first responder',
    required: 1,
    approvals: 0,
    allowSelfApproval: false,
    expiresAt: null,
    onTimeout: null,
    escalations: 1,
    autoReason: null,
    supersededBy: null,
    createdAt: new Date().toISOString(),
    resolvedAt: null,
    decisions: [],
  } as unknown as ApprovalRecord;

  it('keep the buttons for the new approvers and the thread, and drop them, saying why, for approvers no longer asked', () => {
    const json = (m: unknown) => JSON.stringify(m);
    const view = toApprovalView(escalated);
    expect(json(renderApprovalMessage(view, { kind: 'dm', principal: 'slack:T1:U_CFO' }))).toContain('approval.approve');
    expect(json(renderApprovalMessage(view, { kind: 'thread' }))).toContain('approval.approve');
    const former = json(renderApprovalMessage(view, { kind: 'dm', principal: 'slack:T1:U_FIN1' }));
    expect(former).not.toContain('approval.approve');
    expect(former).not.toContain('approval.reject');
    expect(former).toContain('went to other approvers');
    expect(former).toContain('Buy laptops from Acme');
  });
});
