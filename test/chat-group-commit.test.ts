/**
 * Group commit of chat intents (src/db/group-commit.ts, src/chat/intake-writes.ts): a burst of
 * concurrent requests shares a few statements, yet each request keeps its own outcome. Valid
 * intents are recorded exactly once, invalid ones are each refused with their own answer, a
 * platform's re-sent delivery inside the same batch stays a no-op, and a row the database refuses
 * fails alone. Everything goes through the real Slack endpoint (signed requests, Bolt, our HTTP
 * server) on a real PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { GroupCommit } from '../src/db/group-commit.ts';
import { writeDeferredIntents, type DeferredWrite } from '../src/chat/intake-writes.ts';
import { defineWorkflow } from '../src/runtime/workflow.ts';
import { demo } from '../src/workflows/demo.ts';
import { blockAction, slashCommand, type SlackRequest } from './fakes/slack/requests.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { startSlackHarness, type SlackHarness } from './helpers/slack.ts';
import { poll } from './helpers/poll.ts';

const TEAM = 'T0BURST';
const USER = 'U0BURST';
const APPROVER = 'U0APPROVER';

const gated = defineWorkflow({
  name: 'burst-approve',
  version: 1,
  description: 'an approval by the approver, then one step',
  input: z.object({ i: z.number() }),
  run: async (ctx) => {
    const gate = await ctx.approval('approval', {
      policy: { approvers: [`slack:${TEAM}:${APPROVER}`] },
      summary: `Burst order ${ctx.input.i}`,
      params: { i: ctx.input.i },
      tool: 'burst.noop',
      risk: 'low',
    });
    return ctx.step('after', () => gate.approved);
  },
});

let db: TestDb;
let h: SlackHarness;

beforeAll(async () => {
  db = await createTestDb();
  h = await startSlackHarness(db, [demo, gated], { concurrency: 8 });
});

afterAll(async () => {
  await h?.stop();
  await db?.close();
});

/** The ephemeral text a slash command was answered with. */
function ackText(res: { json(): unknown }): string {
  return String((res.json() as { text?: string }).text ?? '');
}

describe('200 concurrent chat intents, grouped', () => {
  it('slash commands: each valid one starts exactly one run, each invalid one gets its own refusal, a re-sent one is a no-op, with no cross-talk', async () => {
    type Case = { i: number; kind: 'valid' | 'unknown' | 'syntax'; req: SlackRequest; channel: string };
    const cases: Case[] = Array.from({ length: 180 }, (_, i) => {
      const channel = `CG${i}`;
      const kind = i % 6 === 1 ? 'unknown' : i % 6 === 4 ? 'syntax' : 'valid';
      const text = kind === 'valid' ? `run demo name=person${i} sleepMs=0` : kind === 'unknown' ? `run nosuch${i}` : `run demo name="person${i}`;
      return { i, kind, channel, req: slashCommand({ text, userId: USER, teamId: TEAM, channelId: channel }) };
    });
    // Twenty valid commands are delivered twice, concurrently: the same trigger_id, as a re-send.
    const resent = cases.filter((c) => c.kind === 'valid').slice(0, 20);
    const before = h.chat.core.groupStats().deferred;
    const sends = [...cases.map((c) => ({ c, resend: false })), ...resent.map((c) => ({ c, resend: true }))];
    const answers = await Promise.all(sends.map(async ({ c, resend }) => ({ c, resend, res: await h.send(c.req) })));
    expect(answers).toHaveLength(200);
    for (const { res } of answers) expect(res.status).toBe(200);

    // Acknowledged once recorded; the worker creates the runs right after.
    const valid = cases.filter((c) => c.kind === 'valid').length;
    const rows = await poll(
      async () => {
        const { rows } = await db.pool.query<{ id: string; conversation: string; name: string }>(
          `SELECT id, origin->>'conversation' AS conversation, input->>'name' AS name FROM tollgate.runs WHERE workflow = 'demo' AND origin->>'conversation' LIKE 'CG%'`,
        );
        return rows.length >= valid && rows;
      },
      { message: 'the runs', timeoutMs: 60_000 },
    );
    await poll(
      async () => {
        const { rows: jobs } = await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM graphile_worker.jobs WHERE task_identifier = 'chat-intent'`);
        return Number(jobs[0]?.n) === 0;
      },
      { message: 'every recorded command to be carried out' },
    );
    const byChannel = new Map<string, { id: string; name: string }[]>();
    for (const r of rows) byChannel.set(r.conversation, [...(byChannel.get(r.conversation) ?? []), r]);

    for (const c of cases) {
      const runs = byChannel.get(c.channel) ?? [];
      const mine = answers.filter((a) => a.c === c).map((a) => ackText(a.res));
      if (c.kind === 'valid') {
        // Recorded once, with this request's own input, and the answer names this request's run.
        expect(runs, `runs for ${c.channel}`).toHaveLength(1);
        expect(runs[0]?.name).toBe(`person${c.i}`);
        const started = mine.filter((t) => t.includes('Started'));
        expect(started).toHaveLength(1);
        expect(started[0]).toContain(runs[0]?.id ?? '?');
        if (resent.includes(c)) expect(mine.filter((t) => t.includes('Already recorded'))).toHaveLength(1);
      } else {
        expect(runs, `runs for ${c.channel}`).toHaveLength(0);
        expect(mine).toHaveLength(1);
        if (c.kind === 'unknown') expect(mine[0]).toContain(`nosuch${c.i}`);
        else expect(mine[0]).toContain('quote');
      }
    }
    // Each recorded run has its live message, once, and its delivery key names it.
    const { rows: msgs } = await db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM tollgate.chat_messages m JOIN tollgate.runs r ON r.id = m.run_id WHERE m.kind = 'run' AND r.origin->>'conversation' LIKE 'CG%'`,
    );
    expect(Number(msgs[0]?.n)).toBe(rows.length);
    const { rows: keys } = await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM tollgate.chat_delivery_keys WHERE run_id = ANY($1)`, [
      rows.map((r) => r.id),
    ]);
    expect(Number(keys[0]?.n)).toBe(rows.length);
    // They went together: fewer statements than runs.
    const after = h.chat.core.groupStats().deferred;
    expect(after.items - before.items).toBe(valid + resent.length);
    expect(after.batches - before.batches).toBeLessThan(after.items - before.items);
  });

  it('Approve clicks: valid ones decide once, a double click is answered "already recorded", each refused click is explained to its own clicker', async () => {
    const runIds: string[] = [];
    for (let i = 0; i < 20; i++) {
      const run = await h.runtime.startRun({
        workflow: 'burst-approve',
        input: { i },
        requester: { platform: 'slack', tenant: TEAM, user: USER },
        origin: { platform: 'slack', tenant: TEAM, conversation: `CA${i}`, thread: null },
      });
      runIds.push(run.id);
    }
    const approvals = await poll(
      async () => {
        const { rows } = await db.pool.query<{ id: string; run_id: string }>(
          `SELECT id, run_id FROM tollgate.approvals WHERE run_id = ANY($1) AND status = 'pending'`,
          [runIds],
        );
        return rows.length === runIds.length && rows;
      },
      { message: 'twenty pending approvals' },
    );
    const ephBefore = h.fake.callsTo('chat.postEphemeral').length;
    const beforeDeferred = h.chat.core.groupStats().deferred;
    // 20 approvals by the approver, each clicked twice; 20 by outsiders; 140 on approvals that do not exist.
    const clicks = [
      ...approvals.flatMap((a) => [a, a].map(() => ({ user: APPROVER, approvalId: a.id, channel: `D${APPROVER}` }))),
      ...approvals.map((a, i) => ({ user: `U0OUT${i}`, approvalId: a.id, channel: `COUT${i}` })),
      ...Array.from({ length: 140 }, (_, i) => ({ user: `U0MISS${i}`, approvalId: `apr_missing${i}`, channel: `CMISS${i}` })),
    ];
    const res = await Promise.all(
      clicks.map((c) =>
        h.send(blockAction({ userId: c.user, teamId: TEAM, actionId: 'approval.approve', value: c.approvalId, channelId: c.channel, messageTs: '1.1' })),
      ),
    );
    expect(res).toHaveLength(200);
    for (const r of res) expect(r.status).toBe(200);

    // Every run resumes after exactly one decision.
    await poll(
      async () => {
        const { rows } = await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM tollgate.runs WHERE id = ANY($1) AND status = 'succeeded'`, [runIds]);
        return Number(rows[0]?.n) === runIds.length;
      },
      { message: 'every gated run to finish', timeoutMs: 60_000 },
    );
    const { rows: decided } = await db.pool.query<{ approval_id: string; principal: string }>(
      `SELECT approval_id, principal FROM tollgate.approval_decisions WHERE approval_id = ANY($1)`,
      [approvals.map((a) => a.id)],
    );
    expect(decided).toHaveLength(20);
    expect(new Set(decided.map((d) => d.principal))).toEqual(new Set([`slack:${TEAM}:${APPROVER}`]));

    // Each refusal reaches its own clicker, in its own channel, about its own approval.
    const told = await poll(
      () => {
        const e = h.fake.callsTo('chat.postEphemeral').slice(ephBefore);
        return e.length >= 180 && e;
      },
      { message: '180 explanations', timeoutMs: 60_000 },
    );
    const toUser = (u: string) => told.filter((c) => c.args.user === u);
    for (let i = 0; i < 140; i++) {
      const mine = toUser(`U0MISS${i}`);
      expect(mine).toHaveLength(1);
      expect(mine[0]?.args.channel).toBe(`CMISS${i}`);
      expect(String(mine[0]?.args.text)).toContain(`apr_missing${i}`);
    }
    for (let i = 0; i < 20; i++) {
      const mine = toUser(`U0OUT${i}`);
      expect(mine).toHaveLength(1);
      expect(mine[0]?.args.channel).toBe(`COUT${i}`);
      // Refused as an outsider, or told the approval was already decided when that came first.
      expect(String(mine[0]?.args.text)).toMatch(new RegExp(`Not allowed|${approvals[i]?.id} was already`));
    }
    const approverTold = toUser(APPROVER);
    expect(approverTold).toHaveLength(20);
    for (const c of approverTold) expect(String(c.args.text)).toContain('already recorded');
    const afterDeferred = h.chat.core.groupStats().deferred;
    expect(afterDeferred.items - beforeDeferred.items).toBe(200);
    expect(afterDeferred.batches - beforeDeferred.batches).toBeLessThan(200);
  });
});

describe('a grouped write the database refuses for one item', () => {
  it('records the other items and fails only that one', async () => {
    const log = testLogger();
    const batcher = new GroupCommit({ name: 'test intents', log, write: (items: DeferredWrite[]) => writeDeferredIntents(db.pool, items) });
    const intent = (i: number, note: string): DeferredWrite => ({
      key: { platform: 'slack', key: `gc:${i}`, kind: 'test' },
      payload: { kind: 'test', i, note },
    });
    // jsonb cannot hold a NUL character: the database refuses item 3, and only item 3.
    const items = [intent(1, 'a'), intent(2, 'b'), intent(3, 'bad\u0000note'), intent(4, 'd'), intent(5, 'e')];
    const outcomes = await Promise.allSettled(items.map((it) => batcher.submit(it)));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(String((outcomes[2] as PromiseRejectedResult).reason)).toMatch(/\\u0000|unicode|NUL/i);
    const { rows } = await db.pool.query<{ key: string }>(`SELECT key FROM tollgate.chat_delivery_keys WHERE key LIKE 'gc:%' ORDER BY key`);
    expect(rows.map((r) => r.key)).toEqual(['gc:1', 'gc:2', 'gc:4', 'gc:5']);
    // The grouped write went in fewer statements than items, and a re-send of item 1 writes nothing.
    expect(batcher.stats().batches).toBeLessThan(batcher.stats().items);
    expect(await batcher.submit(intent(1, 'again'))).toBe(false);
  });

  it('a re-sent delivery in the same grouped write as its first is a no-op', async () => {
    const batcher = new GroupCommit({ name: 'test intents', log: testLogger(), write: (items: DeferredWrite[]) => writeDeferredIntents(db.pool, items) });
    const intent = (key: string, note: string): DeferredWrite => ({ key: { platform: 'slack', key, kind: 'test' }, payload: { kind: 'test', note } });
    // The first goes alone (nothing in flight); the next three queue behind it and go together.
    const outcomes = await Promise.all(
      [intent('dup:0', 'first'), intent('dup:1', 'a'), intent('dup:1', 'a re-sent'), intent('dup:2', 'b')].map((it) => batcher.submit(it)),
    );
    expect(outcomes).toEqual([true, true, false, true]);
    expect(batcher.stats()).toEqual({ batches: 2, items: 4 });
    const { rows } = await db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id WHERE t.identifier = 'chat-intent' AND j.payload->>'note' IN ('a', 'a re-sent')`,
    );
    expect(Number(rows[0]?.n)).toBe(1);
  });
});
