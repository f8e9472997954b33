/**
 * Bad input is answered with one clear sentence naming what was wrong, never a 500, a raw
 * database error or a silent guess (issue 9, item 6): Slack requests that name no one or come from
 * the future, NUL characters, numbers that are not decimal, unknown parameter and configuration
 * keys, bad CLI options, and a project module's tool configuration.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { main } from '../src/cli/main.ts';
import { isTollgateError } from '../src/common/errors.ts';
import { loadProject } from '../src/config/project.ts';
import { parseProjectConfig, projectSection } from '../src/config/project-config.ts';
import { defineWorkflow } from '../src/runtime/workflow.ts';
import { demo } from '../src/workflows/demo.ts';
import { purchaseOrderSettings, purchaseOrderWorkflow } from '../src/workflows/purchase-order.ts';
import { EMPTY_PROJECT_CONFIG } from '../src/config/project-config.ts';
import { blockAction, eventCallback, slashCommand, viewSubmission } from './fakes/slack/requests.ts';
import { createTestDb, TEST_AUDIT_ENV, type TestDb } from './helpers/db.ts';
import { startSlackHarness, type SlackHarness } from './helpers/slack.ts';
import { poll } from './helpers/poll.ts';

const TEAM = 'T0001';
const ALICE = 'UALICE01';

const ticket = defineWorkflow({
  name: 'ticket',
  version: 1,
  description: 'Open a ticket',
  input: z.object({
    title: z.string().min(3).describe('What is wrong'),
    count: z.coerce.number().int().positive().describe('How many machines'),
  }),
  run: async (ctx) => ctx.step('open', () => ({ opened: ctx.input.title })),
});

let db: TestDb;
let h: SlackHarness;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  db = await createTestDb();
  h = await startSlackHarness(db, [demo, ticket, purchaseOrderWorkflow(EMPTY_PROJECT_CONFIG)]);
  env = { ...TEST_AUDIT_ENV, DATABASE_URL: db.url, LOG_LEVEL: 'silent' };
});
afterAll(async () => {
  await h?.stop();
  await db?.close();
});

async function runCount(): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tollgate.runs');
  return rows[0]!.n;
}

async function cli(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'tollgate', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) }, { ...env, ...extraEnv });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('Slack requests', () => {
  it('a slash command without user_id or team_id is answered with a sentence, not a 500, and records nothing', async () => {
    const before = await runCount();
    for (const drop of ['team_id', 'user_id']) {
      const req = slashCommand({ text: 'run demo sleepMs=0', userId: ALICE, teamId: TEAM, channelId: 'C0NOBODY' });
      const fields = new URLSearchParams(req.body);
      fields.delete(drop);
      const res = await h.send({ ...req, body: fields.toString() });
      expect(res.status).toBe(200);
      expect(res.text).toContain('cannot tell who asked');
    }
    expect(await runCount()).toBe(before);
  });

  it('a button click or form submission without a user is acknowledged and changes nothing (no 500)', async () => {
    const before = await runCount();
    for (const strip of ['user', 'team'] as const) {
      const req = blockAction({ actionId: 'run.cancel', value: 'run_nonexistent', userId: ALICE, teamId: TEAM, channelId: 'C0NOBODY', messageTs: '1.000' });
      const payload = JSON.parse(new URLSearchParams(req.body).get('payload') as string) as Record<string, unknown>;
      if (strip === 'user') delete payload.user;
      else {
        delete (payload.user as Record<string, unknown>).team_id;
        payload.team = null;
      }
      const res = await h.send({ ...req, body: new URLSearchParams({ payload: JSON.stringify(payload) }).toString() });
      expect(res.status).toBe(200);
    }
    expect(await runCount()).toBe(before);
  });

  it('a correctly signed request timestamped 600 s in the future is refused with 401', async () => {
    const before = await runCount();
    const now = Math.floor(Date.now() / 1000);
    const req = slashCommand({ text: 'run demo sleepMs=0', userId: ALICE, teamId: TEAM, channelId: 'C0FUTURE' });
    expect((await h.send(req, { timestampSec: now + 600 })).status).toBe(401);
    expect(await runCount()).toBe(before);
    // Within Slack's five minutes either way it is taken.
    const ok = await h.send(slashCommand({ text: 'run demo sleepMs=0', userId: ALICE, teamId: TEAM, channelId: 'C0FUTURE' }), { timestampSec: now + 60 });
    expect(ok.status).toBe(200);
    expect(await runCount()).toBe(before + 1);
  });

  it('a NUL character in a parameter is a field error naming it, in a reply through the outbox (no 500)', async () => {
    const before = await runCount();
    const channel = 'C0NUL';
    const res = await h.send(
      eventCallback({
        userId: ALICE,
        teamId: TEAM,
        event: {
          type: 'app_mention',
          user: ALICE,
          text: `<@${h.fake.botUserId}> run ticket title=Pr\u0000inter count=2`,
          ts: '1700000900.000100',
          channel,
          event_ts: '1700000900.000100',
        },
      }),
    );
    expect(res.status).toBe(200);
    const reply = await poll(() => h.fake.messagesIn(channel)[0], { message: 'the reply' });
    expect(JSON.stringify(reply.blocks)).toMatch(/title\*: contains a NUL character \(U\+0000\)/);
    expect(await runCount()).toBe(before);
  });

  it('a form submission with amount 0x10 gets a field error on amount; 16 is not guessed', async () => {
    const before = await runCount();
    const res = await h.send(
      viewSubmission({
        userId: ALICE,
        teamId: TEAM,
        callbackId: 'run.params',
        privateMetadata: JSON.stringify({ workflow: 'ticket', version: 1, channel: 'C0HEX', threadTs: null }),
        values: { title: { value: { type: 'plain_text_input', value: 'Printer' } }, count: { value: { type: 'plain_text_input', value: '0x10' } } },
      }),
    );
    const body = res.json() as { response_action: string; errors: Record<string, string> };
    expect(body.response_action).toBe('errors');
    expect(body.errors.count).toMatch(/decimal number such as 1200/);
    expect(await runCount()).toBe(before);
  });
});

describe('run parameters, for every caller (runtime.startRun)', () => {
  it('refuses a NUL character as TG_INPUT_INVALID naming the field, not a database error', async () => {
    const e = await rejection(h.runtime.startRun({ workflow: 'demo', input: { name: 'A\u0000da' } }));
    expect(isTollgateError(e) && e.code).toBe('TG_INPUT_INVALID');
    expect(e.message).toBe('Invalid input for demo: name: contains a NUL character (U+0000), which cannot be stored; remove it.');
  });

  it('takes decimal numbers only: hex, binary, exponents, Infinity, blanks are refused by name', async () => {
    for (const bad of ['0x10', '0b1', '1e3', 'Infinity', '', ' ']) {
      const e = await rejection(h.runtime.startRun({ workflow: 'ticket', input: { title: 'Printer', count: bad } }));
      expect(e.message).toBe(`Invalid input for ticket: count: must be a decimal number such as 1200 or 99.50, not "${bad}".`);
    }
    const run = await h.runtime.startRun({ workflow: 'ticket', input: { title: 'Printer', count: ' 16 ' } });
    expect(run.input).toEqual({ title: 'Printer', count: 16 });
  });

  it('refuses an unknown parameter, naming it, the closest known one and all of them', async () => {
    const e = await rejection(h.runtime.startRun({ workflow: 'purchase-order', input: { vendr: 'Acme', amount: 5, currency: 'EUR', reason: 'pens' } }));
    expect(e.message).toContain(
      'vendr: "vendr" is not a parameter of this workflow (did you mean "vendor"?); it takes vendor, amount, currency, reason, vendorContact.',
    );
  });
});

describe('the CLI', () => {
  it('run: amount=0x10, an unknown key and a NUL are refused with one sentence and exit 1; nothing is started', async () => {
    const before = await runCount();
    const hex = await cli(['run', 'purchase-order', 'vendor=Acme', 'amount=0x10', 'currency=EUR', 'reason=pens']);
    expect(hex.code).toBe(1);
    expect(hex.err.trim()).toBe('Invalid input for purchase-order: amount: must be a decimal number such as 1200 or 99.50, not "0x10".');
    const typo = await cli(['run', 'purchase-order', 'vendr=Acme', 'amount=5', 'currency=EUR', 'reason=pens']);
    expect(typo.code).toBe(1);
    expect(typo.err).toContain('"vendr" is not a parameter of this workflow (did you mean "vendor"?)');
    const nul = await cli(['run', 'demo', 'name=A\u0000da']);
    expect(nul.code).toBe(1);
    expect(nul.err.trim()).toBe('Invalid input for demo: name: contains a NUL character (U+0000), which cannot be stored; remove it.');
    const twice = await cli(['run', 'demo', 'name=a', 'name=b']);
    expect(twice.code).toBe(1);
    expect(twice.err.trim()).toBe('Parameter "name" is given twice; give it once.');
    expect(await runCount()).toBe(before);
  });

  it('runs list --limit abc and --status bogus: one sentence, exit 1, no stack', async () => {
    for (const limit of ['abc', '0', '-1', '1.5', '100000']) {
      const r = await cli(['runs', 'list', '--limit', limit]);
      expect(r.code).toBe(1);
      expect(r.err.trim()).toBe(`--limit must be a whole number from 1 to 1000, not "${limit}".`);
    }
    const s = await cli(['runs', 'list', '--status', 'bogus']);
    expect(s.code).toBe(1);
    expect(s.err.trim()).toBe(
      '--status must be one of queued, running, waiting, succeeded, failed, cancelled, compensating, compensated, compensation_failed, dead_letter; "bogus" is not a run status.',
    );
    const good = await cli(['runs', 'list', '--status', 'succeeded', '--limit', '5', '--json']);
    expect(good.code).toBe(0);
  });
});

describe('project configuration', () => {
  it('an unknown key is refused with its path and the known keys, at every level that is ours', () => {
    expect(() => parseProjectConfig({ groupz: { finance: [] } })).toThrow(
      '"groupz" is not a known key (did you mean "groups"?); known: groups, operators, cliDelegates, workflows, tools, retention, model, console, policies, tenants.',
    );
    expect(() => parseProjectConfig({ retention: { dayz: 30 } })).toThrow(/retention: "dayz" is not a known key \(did you mean "days"\?\); known: days\./);
    const project = parseProjectConfig({ workflows: { 'purchase-order': { approvalThresold: 5000 } } });
    expect(() => projectSection(project, 'workflows', 'purchase-order', purchaseOrderSettings)).toThrow(
      /workflows\.purchase-order\.approvalThresold: "approvalThresold" is not a known key \(did you mean "approvalThreshold"\?\)/,
    );
  });

  it('a workflow or tool section named after nothing is refused at start-up, with the closest name', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-sections-'));
    const file = path.join(dir, 'tollgate.json');
    writeFileSync(file, JSON.stringify({ workflows: { 'purchase-ordr': { approvalThreshold: 50 } }, tools: { 'http.requests': {} } }));
    const { code, err } = await cli(['runs', 'list'], { TOLLGATE_CONFIG: file });
    expect(code).toBe(1);
    expect(err).toContain('workflows.purchase-ordr: "purchase-ordr" is not a known workflow (did you mean "purchase-order"?)');
    expect(err).toContain('tools.http.requests: "http.requests" is not a known tool (did you mean "http.request"?)');
  });

  it('a .ts project module configures tools (as in JSON) beside its own definitions; both forms at once are refused', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-module-'));
    const file = path.join(dir, 'project.mjs');
    writeFileSync(
      file,
      `const greet = { name: 'greet', version: 1, description: 'hi', input: undefined, run: async () => 'hi' };
       const shout = { name: 'text.shout', effect: 'read', handler: async () => 'HI' };
       export default {
         groups: { finance: ['slack:T1:U1'] },
         tools: { 'http.request': { allowedHosts: ['api.example.com'] } },
         workflows: { 'purchase-order': { approvalThreshold: 50 } },
         workflowDefinitions: [greet],
         toolDefinitions: [shout],
       };\n`,
    );
    const project = await loadProject(file);
    expect(project.config.tools).toEqual({ 'http.request': { allowedHosts: ['api.example.com'] } });
    expect(project.config.workflows).toEqual({ 'purchase-order': { approvalThreshold: 50 } });
    expect(project.workflows.map((w) => w.name)).toEqual(['greet']);
    expect(project.tools.map((t) => t.name)).toEqual(['text.shout']);

    const both = path.join(dir, 'both.mjs');
    writeFileSync(both, `export default { tools: [{ name: 'a', effect: 'read', handler: () => 1 }], toolDefinitions: [] };\n`);
    await expect(loadProject(both)).rejects.toThrow(/exports both `tools: \[\.\.\.\]` and `toolDefinitions`/);
  });
});
