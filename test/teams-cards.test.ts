/**
 * The Teams renderer (bots/teams/cards.ts): every card it can draw is a valid Adaptive Card 1.5
 * (checked with Microsoft's own parser, `adaptivecards` 3.x) under 28 KB; buttons carry ids only;
 * each viewer's card offers Approve/Reject only to someone who may still decide; the sentences are
 * the shared ones Slack uses.
 */
import { describe, expect, it } from 'vitest';
import { approvalBlocks, SLACK_MARKUP, slackDate } from '../bots/slack/blocks.ts';
import {
  cardOf,
  executeActions,
  reasonInputId,
  REASON_REQUIRED_MESSAGE,
  renderForViewer,
  renderTeams,
  TEAMS_MARKUP,
  teamsDate,
  VERBS,
  type AdaptiveCard,
} from '../bots/teams/cards.ts';
import type { ChatView } from '../src/chat/platform.ts';
import type { RunSummary } from '../src/chat/replies.ts';
import { formatPrincipal, type Principal } from '../src/common/principals.ts';
import type { ApprovalDecisionView, ApprovalView } from '../src/views/approval-view.ts';
import type { FormField } from '../src/views/form.ts';
import type { RunView, StepView } from '../src/views/run-view.ts';

import { parse, size } from './helpers/adaptive-cards.ts';

/** Every TextBlock's text, in order (show-cards included). */
function texts(card: { body?: unknown; actions?: unknown }): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (o.type === 'TextBlock' && typeof o.text === 'string') out.push(o.text);
    for (const x of Object.values(o)) walk(x);
  };
  walk({ body: card.body, actions: card.actions });
  return out;
}

/** Every element of a given type (show-cards included). */
function elements(card: { body?: unknown; actions?: unknown }, type: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (o.type === type) out.push(o);
    for (const x of Object.values(o)) walk(x);
  };
  walk({ body: card.body, actions: card.actions });
  return out;
}

const verbs = (card: AdaptiveCard) => executeActions(card).map((a) => a.verb);

// ---------------------------------------------------------------------------------------------
// Views

const teams = (user: string, name?: string): Principal => ({ platform: 'teams', tenant: 'tid', user, ...(name ? { name } : {}) });
const ada = teams('aad-ada', 'Ada');
const bob = teams('aad-bob', 'Bob');
const cy = teams('aad-cy');
const outsider = teams('aad-eve', 'Eve');
const slackUser: Principal = { platform: 'slack', tenant: 'T1', user: 'U1' };
const at = new Date('2026-03-01T09:30:00.250Z');

const decision = (by: Principal, d: 'approve' | 'reject', comment: string | null = null): ApprovalDecisionView => ({
  principal: formatPrincipal(by),
  by,
  decision: d,
  comment,
  at,
});

const approval = (over: Partial<ApprovalView> = {}): ApprovalView => ({
  id: 'apr_1',
  runId: 'run_01',
  workflow: 'pay-invoice',
  step: 'pay',
  summary: 'Pay invoice 42 to ACME',
  status: 'pending',
  tool: 'bank.transfer',
  params: { amount: 1200, currency: 'EUR' },
  risk: 'moves money',
  rationale: 'The invoice was received and checked.',
  requestedBy: ada,
  approvers: 'group finance (3 people)',
  required: 2,
  approvals: 0,
  decisions: [],
  deadline: new Date('2026-03-02T12:00:00Z'),
  endReason: null,
  eligible: [formatPrincipal(ada), formatPrincipal(bob), formatPrincipal(cy), formatPrincipal(slackUser)],
  allowSelfApproval: true,
  ...over,
});

const approvedOnce = approval({ approvals: 1, decisions: [decision(ada, 'approve')] });
const approved = approval({ status: 'approved', approvals: 2, decisions: [decision(ada, 'approve'), decision(bob, 'approve')] });
const rejected = approval({ status: 'rejected', approvals: 1, decisions: [decision(ada, 'approve'), decision(bob, 'reject', 'Not this *month*')] });
const expired = approval({ status: 'expired', endReason: 'the deadline passed' });

const step = (i: number, over: Partial<StepView> = {}): StepView => ({
  idx: i,
  name: `step-${i}`,
  kind: 'step',
  status: 'succeeded',
  attempts: 1,
  durationMs: 1200 + i,
  error: null,
  ...over,
});

// The same shape as test/slack-render.test.ts's factory; a shared one would belong in test/helpers.
const run = (over: Partial<RunView> = {}): RunView => ({
  runId: 'run_01',
  workflow: 'pay-invoice',
  version: 3,
  status: 'running',
  requester: ada,
  input: {},
  output: null,
  createdAt: at,
  finishedAt: null,
  waiting: null,
  error: null,
  cancelRequested: false,
  steps: [step(0), step(1, { status: 'running', durationMs: null })],
  actions: ['run.cancel'],
  approvals: [],
  ...over,
});

const longText = (n: number, seed: string) => `${seed} ${'lorem "ipsum" *dolor* [sit](amet) '.repeat(Math.ceil(n / 35))}`.slice(0, n);

/** A 40-step failed run with long errors and several approvals with long parameters. */
const bigFailedRun = run({
  status: 'failed',
  steps: Array.from({ length: 40 }, (_, i) =>
    i === 39
      ? step(i, { name: `charge-${'x'.repeat(200)}`, status: 'failed', attempts: 5, error: longText(20_000, 'boom') })
      : step(i, { name: `step-${i}-${'y'.repeat(120)}` }),
  ),
  error: { step: `charge-${'x'.repeat(200)}`, message: longText(20_000, 'boom') },
  actions: ['run.retry'],
  approvals: Array.from({ length: 12 }, (_, i) =>
    approval({
      id: `apr_big_${i}`,
      step: `gate-${i}-${'z'.repeat(100)}`,
      summary: longText(3000, `summary ${i}`),
      status: i % 3 === 0 ? 'pending' : i % 3 === 1 ? 'approved' : 'rejected',
      params: Object.fromEntries(Array.from({ length: 60 }, (_, k) => [`param_${k}`, longText(100, `v${k}`)])),
      risk: longText(4000, 'risk'),
      rationale: longText(4000, 'why'),
      approvers: longText(2000, 'approvers'),
      decisions: i % 3 === 0 ? [] : [decision(ada, 'approve'), decision(bob, i % 3 === 1 ? 'approve' : 'reject', longText(3000, 'no'))],
      eligible: Array.from({ length: 80 }, (_, k) => `teams:tid:aad-user-${String(k).padStart(36, '0')}`),
    }),
  ),
});

const waitingRun = run({
  status: 'waiting',
  waiting: { reason: 'approval', until: new Date('2026-03-02T12:00:00Z') },
  approvals: [approvedOnce, approval({ id: 'apr_2', step: 'notify', required: 1 })],
  actions: ['run.cancel'],
});

const fields: FormField[] = [
  { name: 'vendor', type: 'string', description: 'Who is paid', optional: false, defaultValue: undefined, options: undefined },
  { name: 'amount', type: 'number', description: 'In the currency below', optional: false, defaultValue: undefined, options: undefined },
  { name: 'currency', type: 'enum', description: undefined, optional: true, defaultValue: 'EUR', options: ['EUR', 'USD'] },
  { name: 'urgent', type: 'boolean', description: 'Pay today', optional: true, defaultValue: 'false', options: ['true', 'false'] },
  { name: 'note', type: 'string', description: undefined, optional: true, defaultValue: undefined, options: undefined },
];

const formReply = {
  kind: 'invalid-params' as const,
  workflow: 'pay-invoice',
  version: 3,
  fields,
  errors: [
    { field: 'amount', message: 'Expected number, received string' },
    { field: '', message: 'Either vendor or note must say who is paid' },
    { field: 'vendor', message: 'Required' },
  ],
  inputs: 'vendor, amount (number), currency=EUR|USD [default EUR], urgent (boolean) [default false], note [optional]',
  given: { amount: 'twelve', currency: 'USD', note: 'Q1' },
};

const runSummaries = (n: number): RunSummary[] =>
  Array.from({ length: n }, (_, i) => ({ id: `run_${i}`, workflow: `wf-${i}`, version: 1, status: i % 2 ? 'failed' : 'succeeded', createdAt: at }));

const gallery: [string, ChatView][] = [
  ['run: running, no approvals', { kind: 'run', run: run() }],
  ['run: waiting on two approvals', { kind: 'run', run: waitingRun }],
  ['run: 40 steps, failed, long errors, 12 approvals with long params', { kind: 'run', run: bigFailedRun }],
  ['run: dead letter, cancel requested', { kind: 'run', run: run({ status: 'dead_letter', actions: ['run.retry', 'run.cancel'], cancelRequested: true }) }],
  ['run: succeeded, no steps', { kind: 'run', run: run({ status: 'succeeded', steps: [], actions: [] }) }],
  ['approval: pending (thread)', { kind: 'approval', approval: approval(), copy: { kind: 'thread' } }],
  ['approval: pending, 1 of 2 (DM to an approver)', { kind: 'approval', approval: approvedOnce, copy: { kind: 'dm', principal: formatPrincipal(bob) } }],
  ['approval: escalated away (DM)', { kind: 'approval', approval: approval(), copy: { kind: 'dm', principal: formatPrincipal(outsider) } }],
  ['approval: approved', { kind: 'approval', approval: approved, copy: { kind: 'thread' } }],
  ['approval: rejected', { kind: 'approval', approval: rejected, copy: { kind: 'thread' } }],
  ['approval: expired', { kind: 'approval', approval: expired, copy: { kind: 'thread' } }],
  ['approval: huge', { kind: 'approval', approval: bigFailedRun.approvals[0] as ApprovalView, copy: { kind: 'thread' } }],
  [
    'approval: emoji, control characters and quotes everywhere',
    {
      kind: 'approval',
      approval: approval({
        summary: '界'.repeat(3000),
        step: '"'.repeat(500),
        params: { q: '"'.repeat(5000) },
        risk: '\u0001'.repeat(5000),
        rationale: '\\'.repeat(5000),
        approvers: '\u0002'.repeat(5000),
        requestedBy: { ...ada, name: '😀'.repeat(3000) },
      }),
      copy: { kind: 'thread' },
    },
  ],
  ['reminder', { kind: 'reminder', approval: approval() }],
  ['reminder without deadline', { kind: 'reminder', approval: approval({ deadline: null }) }],
  ['notice', { kind: 'notice', text: 'Started *pay-invoice* as `run_01`.\nSee [here](http://x) or _that_.' }],
  ['notice, very long', { kind: 'notice', text: longText(50_000, '*long*') }],
  [
    'workflows',
    {
      kind: 'workflows',
      intro: 'Hi! I run workflows.',
      workflows: [{ name: 'pay-invoice', version: 3, description: 'Pays an invoice', inputs: formReply.inputs }],
    },
  ],
  ['workflows: none', { kind: 'workflows', intro: null, workflows: [] }],
  [
    'workflows: 200 long',
    {
      kind: 'workflows',
      intro: null,
      workflows: Array.from({ length: 200 }, (_, i) => ({ name: `wf-${i}`, version: i, description: longText(800, 'd'), inputs: longText(800, 'i') })),
    },
  ],
  ['runs', { kind: 'runs', title: 'Your recent runs', runs: runSummaries(5) }],
  ['runs: none', { kind: 'runs', title: 'Your recent runs', runs: [] }],
  ['runs: 300', { kind: 'runs', title: 'All runs', runs: runSummaries(300) }],
  ['approvals: none', { kind: 'approvals', approvals: [] }],
  [
    'approvals: 30',
    { kind: 'approvals', approvals: Array.from({ length: 30 }, (_, i) => ({ ...(bigFailedRun.approvals[0] as ApprovalView), id: `apr_l_${i}` })) },
  ],
  ['run-status', { kind: 'run-status', run: waitingRun }],
  ['invalid-params: form with every field type and errors', formReply],
  [
    'invalid-params: no fields',
    { kind: 'invalid-params', workflow: 'pay-invoice', errors: [{ field: 'amount', message: 'Required' }], inputs: 'amount (number)', given: {} },
  ],
  [
    'invalid-params: 80 long fields',
    {
      ...formReply,
      fields: Array.from({ length: 80 }, (_, i): FormField => ({
        name: `f${i}`,
        type: 'string',
        description: longText(500, 'desc'),
        optional: false,
        defaultValue: longText(3000, 'v'),
        options: undefined,
      })),
    },
  ],
];

/** Each view as the base card, as an eligible approver sees it, and as an outsider told no. */
function everyCard(view: ChatView): [string, AdaptiveCard][] {
  return [
    ['base', cardOf(renderTeams(view))],
    ['approver', renderForViewer(view, cy)],
    ['outsider', renderForViewer(view, outsider, 'Not allowed: you are not an approver of this request; nothing changed.')],
  ];
}

// ---------------------------------------------------------------------------------------------

describe('every Teams card is a valid Adaptive Card 1.5 under 28 KB', () => {
  it.each(gallery)('%s', (_name, view) => {
    for (const [who, card] of everyCard(view)) {
      expect({ who, issues: parse(card).issues }).toEqual({ who, issues: [] });
      expect(size(card), who).toBeLessThan(28_000);
      expect(card).toMatchObject({ type: 'AdaptiveCard', version: '1.5', $schema: 'http://adaptivecards.io/schemas/adaptive-card.json' });
      expect(card.fallbackText.length, who).toBeGreaterThan(0);
    }
  });

  it('a card of pathological text (emoji, control characters, quotes, backslashes) still fits with its buttons', () => {
    const view = gallery.find(([n]) => n === 'approval: emoji, control characters and quotes everywhere')?.[1] as ChatView;
    const card = cardOf(renderTeams(view));
    expect(size(card)).toBeLessThan(28_000);
    expect(verbs(card)).toEqual([VERBS.approve, VERBS.reject]);
    expect(texts(card).some((t) => t.startsWith('Rationale: '))).toBe(true);
  });

  it('renders the same view to the same JSON twice (the outbox hashes it)', () => {
    for (const [, view] of gallery) {
      expect(JSON.stringify(renderTeams(view))).toBe(JSON.stringify(renderTeams(structuredClone(view))));
      expect(JSON.stringify(renderForViewer(view, ada, 'Recorded: you approved.'))).toBe(
        JSON.stringify(renderForViewer(structuredClone(view), ada, 'Recorded: you approved.')),
      );
    }
  });

  it('a 40-step failed run folds its older steps, cuts the error and counts the approvals it leaves out', () => {
    const card = cardOf(renderTeams({ kind: 'run', run: bigFailedRun }));
    const t = texts(card);
    expect(t).toContain('_… 20 earlier steps (20 succeeded)_');
    expect(t.filter((x) => /^(✅|❌) step-|^(✅|❌) charge-/.test(x))).toHaveLength(20);
    expect(t.some((x) => x.startsWith('Step **charge-'))).toBe(true);
    const error = t.find((x) => x.startsWith('boom'));
    expect(error?.endsWith('…')).toBe(true);
    expect(t.some((x) => /^… and \d+ more approvals?; send \*\*approvals\*\*/.test(x))).toBe(true);
    expect(verbs(card)).toContain(VERBS.retry);
  });
});

describe('buttons carry ids only', () => {
  it('every action sends only its ids (approvalId, runId, workflow and version), never who clicked', () => {
    const allowed: Record<string, string[]> = {
      [VERBS.approve]: ['approvalId'],
      [VERBS.reject]: ['approvalId'],
      [VERBS.retry]: ['runId'],
      [VERBS.cancel]: ['runId'],
      [VERBS.start]: ['version', 'workflow'],
      [VERBS.refresh]: ['approvalId', 'runId'],
    };
    let seen = 0;
    for (const [, view] of gallery) {
      for (const [, card] of everyCard(view)) {
        const actions = [...executeActions(card), ...(card.refresh ? [card.refresh.action] : [])];
        for (const a of actions) {
          seen++;
          expect(Object.keys(allowed)).toContain(a.verb);
          for (const key of Object.keys(a.data)) expect(allowed[a.verb]).toContain(key);
          expect(JSON.stringify(a.data)).not.toMatch(/aad-|teams:|slack:/);
        }
      }
    }
    expect(seen).toBeGreaterThan(50);
  });

  it('Reject asks for a required reason, and sends only the reason of the approval it rejects', () => {
    const card = cardOf(renderTeams({ kind: 'run', run: waitingRun }));
    const { parsed } = parse(card);
    // getAllActions lists an ActionSet's actions twice; a Set keeps each once.
    const all = [...new Set(parsed.getAllActions())];
    const rejects = all
      .filter((a) => a.getJsonTypeName() === 'Action.ShowCard')
      .flatMap((s) => [...new Set(s.card?.getAllActions() ?? [])])
      .filter((a) => a.verb === VERBS.reject);
    expect(rejects).toHaveLength(2);
    expect(rejects.map((a) => Object.keys(a.getReferencedInputs()))).toEqual([[reasonInputId('apr_1')], [reasonInputId('apr_2')]]);
    const approves = all.filter((a) => a.verb === VERBS.approve);
    expect(approves.length).toBeGreaterThan(0);
    for (const a of approves) expect(a.getReferencedInputs()).toEqual({});

    const reason = elements(card, 'Input.Text').find((i) => i.id === 'reason.apr_1');
    expect(reason).toMatchObject({ isMultiline: true, maxLength: 2000, isRequired: true, errorMessage: REASON_REQUIRED_MESSAGE });
    expect(REASON_REQUIRED_MESSAGE).toBe('Say why you reject it; the requester sees this.');
    const reject = executeActions(card).find((a) => a.verb === VERBS.reject);
    expect(reject).toMatchObject({ associatedInputs: 'auto', data: { approvalId: 'apr_1' } });
    expect(executeActions(card).find((a) => a.verb === VERBS.approve)).toMatchObject({ associatedInputs: 'none' });
    // Cancel does not wait for a reason typed (or not) into an approval.
    expect(executeActions(card).find((a) => a.verb === VERBS.cancel)).toMatchObject({ associatedInputs: 'none', data: { runId: 'run_01' } });
  });

  it('the base approval card shows its buttons while pending and refreshes for the eligible Teams users only', () => {
    const card = cardOf(renderTeams({ kind: 'approval', approval: approval(), copy: { kind: 'thread' } }));
    expect(verbs(card)).toEqual([VERBS.approve, VERBS.reject]);
    expect(card.refresh).toEqual({
      action: { type: 'Action.Execute', verb: 'card.refresh', data: { approvalId: 'apr_1' } },
      userIds: ['8:orgid:aad-ada', '8:orgid:aad-bob', '8:orgid:aad-cy'],
    });
    expect(JSON.stringify(card.refresh)).not.toContain('U1');
    // Never more users than Teams refreshes for.
    const many = cardOf(renderTeams({ kind: 'approval', approval: bigFailedRun.approvals[0] as ApprovalView, copy: { kind: 'thread' } }));
    expect(many.refresh?.userIds).toHaveLength(60);
  });

  it('a run card with a pending approval refreshes by run id; resolved approvals have neither buttons nor refresh', () => {
    const live = cardOf(renderTeams({ kind: 'run', run: waitingRun }));
    expect(live.refresh?.action.data).toEqual({ runId: 'run_01' });
    expect(live.refresh?.userIds).toEqual(['8:orgid:aad-ada', '8:orgid:aad-bob', '8:orgid:aad-cy']);
    for (const a of [approved, rejected, expired]) {
      const copy = cardOf(renderTeams({ kind: 'approval', approval: a, copy: { kind: 'thread' } }));
      expect(verbs(copy)).toEqual([]);
      expect(elements(copy, 'Input.Text')).toEqual([]);
      expect(copy.refresh).toBeUndefined();
      const inRun = cardOf(renderTeams({ kind: 'run', run: run({ status: 'succeeded', approvals: [a], actions: [] }) }));
      expect(verbs(inRun)).toEqual([]);
      expect(inRun.refresh).toBeUndefined();
    }
  });

  it('a DM copy to someone the request was escalated away from keeps the request, loses the buttons and says why', () => {
    const card = cardOf(renderTeams({ kind: 'approval', approval: approval(), copy: { kind: 'dm', principal: formatPrincipal(outsider) } }));
    expect(verbs(card)).toEqual([]);
    expect(texts(card)).toContain('This request went to other approvers (escalated); nothing is needed from you.');
    expect(texts(card).some((t) => t.includes('Pay invoice 42 to ACME'))).toBe(true);
  });
});

describe('renderForViewer: the card one person sees', () => {
  const pending: ChatView = { kind: 'approval', approval: approvedOnce, copy: { kind: 'thread' } };

  it('an eligible approver who has not decided yet sees Approve and Reject, with the reason input', () => {
    const card = renderForViewer(pending, bob);
    expect(verbs(card)).toEqual([VERBS.approve, VERBS.reject]);
    expect(elements(card, 'Input.Text').map((i) => i.id)).toEqual(['reason.apr_1']);
  });

  it('someone who already decided, an outsider, and anyone after the gate resolved see no buttons', () => {
    expect(verbs(renderForViewer(pending, ada))).toEqual([]);
    expect(verbs(renderForViewer(pending, outsider))).toEqual([]);
    for (const a of [approved, rejected, expired]) {
      for (const who of [ada, bob, cy, outsider]) {
        expect(verbs(renderForViewer({ kind: 'approval', approval: a, copy: { kind: 'thread' } }, who))).toEqual([]);
      }
    }
    // In a run card too: each approval by itself.
    const runCard = renderForViewer({ kind: 'run', run: run({ approvals: [approvedOnce, approval({ id: 'apr_2', eligible: [formatPrincipal(ada)] })] }) }, ada);
    expect(
      executeActions(runCard)
        .filter((a) => a.verb === VERBS.approve)
        .map((a) => a.data),
    ).toEqual([{ approvalId: 'apr_2' }]);
  });

  it('by the one eligibility rule, a requester the policy bars from approving their own request sees no buttons; an eligible approver does', () => {
    const own: ChatView = { kind: 'approval', approval: approval({ allowSelfApproval: false }), copy: { kind: 'thread' } }; // requested by Ada, who is among the approvers
    expect(verbs(renderForViewer(own, ada))).toEqual([]);
    expect(verbs(renderForViewer(own, bob))).toEqual([VERBS.approve, VERBS.reject]);
    const allowed: ChatView = { kind: 'approval', approval: approval({ allowSelfApproval: true }), copy: { kind: 'thread' } };
    expect(verbs(renderForViewer(allowed, ada))).toEqual([VERBS.approve, VERBS.reject]);
  });

  it('offers Retry and Cancel as the run does, to any viewer', () => {
    expect(verbs(renderForViewer({ kind: 'run', run: run({ status: 'failed', actions: ['run.retry'] }) }, outsider))).toEqual([VERBS.retry]);
    expect(verbs(renderForViewer({ kind: 'run', run: run({ status: 'dead_letter', actions: ['run.retry', 'run.cancel'] }) }, outsider))).toEqual([
      VERBS.retry,
      VERBS.cancel,
    ]);
    expect(verbs(renderForViewer({ kind: 'run', run: run({ status: 'succeeded', actions: [] }) }, ada))).toEqual([]);
  });

  it('shows the note first, in bold, with its marks as Teams markdown', () => {
    const card = renderForViewer(pending, outsider, 'Not allowed: you are not an approver of *this* request; nothing changed.');
    expect(card.body[0]).toMatchObject({ type: 'Container', style: 'emphasis' });
    expect(texts(card)[0]).toBe('Not allowed: you are not an approver of **this** request; nothing changed.');
    expect(texts(renderForViewer(pending, bob))[0]).not.toContain('Not allowed');
  });
});

describe('the same sentences as Slack, in Teams markup', () => {
  it("the tally reads as Slack's: 'So far: 1 of 2 approvals (approved by …)'", () => {
    const a = approval({ approvals: 1, decisions: [decision(ada, 'approve')] });
    const slackText = JSON.stringify(approvalBlocks(a));
    const slackLine = /So far: [^\\"]*\)/.exec(slackText)?.[0] ?? '';
    const teamsLine = texts(cardOf(renderTeams({ kind: 'approval', approval: a, copy: { kind: 'thread' } }))).find((t) => t.startsWith('So far:')) ?? '';
    expect(teamsLine).toBe(`So far: 1 of 2 approvals (approved by Ada (Teams) ${teamsDate(at)})`);
    const neutral = (line: string, person: string, date: string) => line.replace(person, 'PERSON').replace(date, 'DATE');
    expect(neutral(teamsLine, TEAMS_MARKUP.person(ada), teamsDate(at))).toBe('So far: 1 of 2 approvals (approved by PERSON DATE)');
    expect(neutral(slackLine, SLACK_MARKUP.person(ada), slackDate(at))).toBe('So far: 1 of 2 approvals (approved by PERSON DATE)');
  });

  it("dates are Adaptive Cards' DATE/TIME functions, so each reader sees their own time zone", () => {
    expect(teamsDate(at)).toBe('{{DATE(2026-03-01T09:30:00Z, SHORT)}} {{TIME(2026-03-01T09:30:00Z)}}');
    const card = cardOf(renderTeams({ kind: 'approval', approval: approval(), copy: { kind: 'thread' } }));
    expect(texts(card)).toContain('Deadline: {{DATE(2026-03-02T12:00:00Z, SHORT)}} {{TIME(2026-03-02T12:00:00Z)}}');
  });

  it('a person shows as their name with their platform, else as their principal', () => {
    const card = cardOf(renderTeams({ kind: 'run', run: run({ requester: cy }) }));
    expect(texts(card)).toContain('Requested by teams:tid:aad-cy');
    expect(texts(cardOf(renderTeams({ kind: 'run', run: run() })))).toContain('Requested by Ada (Teams)');
  });

  it('a rejection names who rejected and why, with inserted markdown escaped', () => {
    const t = texts(cardOf(renderTeams({ kind: 'approval', approval: rejected, copy: { kind: 'thread' } })));
    expect(t).toContain(`**Rejected** by Bob (Teams) ${teamsDate(at)}: Not this \\*month\\*`);
    expect(t).toContain(`Approved before that by Ada (Teams) ${teamsDate(at)}`);
  });

  it('a notice turns *bold* into **bold**, shows `code` as plain text, and escapes the rest', () => {
    const r = renderTeams({ kind: 'notice', text: 'Started *pay-invoice* as `run_01`.\nSee [here](http://x).' });
    expect(texts(cardOf(r))).toEqual(['Started **pay-invoice** as run_01.', 'See \\[here\\](http://x).']);
    expect(r.text).toBe('Started pay-invoice as run_01.\nSee [here](http://x).');
  });
});

describe('lists and forms', () => {
  it('the approvals list shows at most 10 approvals, each with its buttons, and counts the rest', () => {
    const list = Array.from({ length: 30 }, (_, i) => approval({ id: `apr_${i}` }));
    const card = cardOf(renderTeams({ kind: 'approvals', approvals: list }));
    expect(executeActions(card).filter((a) => a.verb === VERBS.approve)).toHaveLength(10);
    expect(texts(card)).toContain('… and 20 more; tollgate approvals list shows them all.');
    expect(texts(cardOf(renderTeams({ kind: 'approvals', approvals: [] })))).toContain('_Nothing waits for your decision._');
  });

  it('workflows list their inputs and say how to start a run', () => {
    const t = texts(cardOf(renderTeams(gallery.find(([n]) => n === 'workflows')?.[1] as ChatView)));
    expect(t).toContain('**pay-invoice** v3: Pays an invoice');
    expect(t.some((x) => x.includes('run <workflow> key=value …'))).toBe(true);
  });

  it("the parameters form has one input per field (ids param.<name>, so a field cannot overwrite the action's own data), prefilled, with each error under its field and form errors on top", () => {
    const card = cardOf(renderTeams(formReply));
    const inputs = card.body.filter((e) => e.type.startsWith('Input.'));
    expect(inputs.map((i) => [i.type, i.id, i.isRequired])).toEqual([
      ['Input.Text', 'param.vendor', true],
      ['Input.Number', 'param.amount', true],
      ['Input.ChoiceSet', 'param.currency', false],
      ['Input.ChoiceSet', 'param.urgent', false],
      ['Input.Text', 'param.note', false],
    ]);
    expect(inputs[0]).toMatchObject({ label: 'vendor: Who is paid' });
    expect(inputs[1]).not.toHaveProperty('value'); // "twelve" is no number: the error says so
    expect(inputs[2]).toMatchObject({
      value: 'USD',
      choices: [
        { title: 'EUR', value: 'EUR' },
        { title: 'USD', value: 'USD' },
      ],
    });
    expect(inputs[3]).toMatchObject({ value: 'false' });
    expect(inputs[4]).toMatchObject({ value: 'Q1' });

    const at = (id: string) => card.body.findIndex((e) => e.id === id);
    expect(card.body[at('param.amount') + 1]).toMatchObject({ type: 'TextBlock', text: 'Expected number, received string', color: 'Attention' });
    expect(card.body[at('param.vendor') + 1]).toMatchObject({ type: 'TextBlock', text: 'Required', color: 'Attention' });
    const formError = card.body.findIndex((e) => e.text === 'Either vendor or note must say who is paid');
    expect(formError).toBeGreaterThan(-1);
    expect(formError).toBeLessThan(at('param.vendor'));

    expect(card.actions).toEqual([
      {
        type: 'Action.Execute',
        title: 'Start run',
        verb: 'run.start',
        data: { workflow: 'pay-invoice', version: 3 },
        associatedInputs: 'auto',
        style: 'positive',
      },
    ]);
  });

  it('without fields, the reply lists the errors and the key=value hint', () => {
    const r = renderTeams({
      kind: 'invalid-params',
      workflow: 'pay-invoice',
      errors: [{ field: 'amount', message: 'Required' }],
      inputs: 'amount (number)',
      given: {},
    });
    const t = texts(cardOf(r));
    expect(t).toContain('**amount**: Required');
    expect(t.some((x) => x.includes('run pay-invoice key=value …'))).toBe(true);
    expect(verbs(cardOf(r))).toEqual([]);
    expect(r.text).toBe('Cannot start pay-invoice: amount: Required');
  });
});
