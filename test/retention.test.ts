/**
 * Retention (issue 9, "Bounded growth"): on by default, it purges every copy of the personal data
 * of runs that finished before the cutoff, and nothing of live or recent runs; the audit chain
 * still verifies; and each purge statement reads through an index.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseCrontab } from 'graphile-worker';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { loadProjectConfig, parseProjectConfig } from '../src/config/project-config.ts';
import { NonRetriableError } from '../src/common/errors.ts';
import { parsePrincipal } from '../src/common/principals.ts';
import { listRunApprovals } from '../src/approvals/index.ts';
import { purgeBefore } from '../src/audit/retention.ts';
import { PURGE_SQL } from '../src/db/queries/retention.ts';
import { verifyAuditChain } from '../src/audit/verify.ts';
import { crontab } from '../jobs/index.ts';
import { createPool } from '../src/db/connect.ts';
import { createTestDb, testAuditKey, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';
import { delay, poll } from './helpers/poll.ts';
import type { Runtime } from '../src/runtime/runtime.ts';

const ALICE = 'slack:T1:UALICE';

/** Personal data everywhere a run keeps some: input, step output, approval, decision comment, error. */
const personal = defineWorkflow({
  name: 'personal',
  version: 1,
  description: 'pays someone after an approval',
  input: z.object({ who: z.string(), fail: z.boolean().default(false) }),
  run: async (ctx) => {
    const who = ctx.input.who;
    const contact = await ctx.step('lookup', () => ({ email: `${who}@example.com` }));
    const gate = await ctx.approval('sign-off', {
      policy: { approvers: [ALICE] },
      summary: `Pay ${who}`,
      params: { payee: who },
      rationale: `${who} asked for it`,
      toolInput: { payee: who, email: contact.email },
    });
    if (ctx.input.fail) {
      await ctx.step('charge', () => {
        throw new NonRetriableError(`card of ${who} declined`);
      });
    }
    return { paid: who, approved: gate.approved };
  },
}) as unknown as WorkflowDefinition;

let db: TestDb;
let r: TestRuntime;
beforeAll(async () => {
  db = await createTestDb();
  r = await createTestRuntime(db, [personal], { project: parseProjectConfig({ groups: {} }) });
});
afterAll(async () => {
  await r.stop();
  await db.close();
});

async function start(runtime: Runtime, who: string, fail = false) {
  const run = await runtime.startRun({
    workflow: 'personal',
    input: { who, fail },
    requester: { ...parsePrincipal('slack:T1:UREQ'), name: `${who} Requester` },
  });
  await waitForRun(runtime, run.id, 'waiting');
  const pending = await poll(async () => (await listRunApprovals(runtime.pool, run.id)).find((a) => a.status === 'pending'), {
    message: `a pending approval in run ${run.id}`,
    retryErrors: false,
  });
  return { run, approvalId: pending.id };
}

/**
 * Not a wait for anything: the runs on either side of the cutoff must carry timestamps that differ
 * from it (the database's clock and ours are read at different moments), so the clock moves on.
 */
const clockApart = () => delay(20);

async function finished(runtime: Runtime, who: string, fail = false) {
  const { run, approvalId } = await start(runtime, who, fail);
  await runtime.decide(approvalId, ALICE, 'approve', `ok, ${who} is a customer`);
  await waitForRun(runtime, run.id, fail ? 'failed' : 'succeeded');
  return run.id;
}

/** Every row that keeps something of a run, as text. */
async function everythingOf(runId: string): Promise<string> {
  const q = async (sql: string) => JSON.stringify((await db.pool.query(sql, [runId])).rows);
  return [
    await q('SELECT * FROM tollgate.runs WHERE id = $1'),
    await q('SELECT * FROM tollgate.steps WHERE run_id = $1'),
    await q('SELECT * FROM tollgate.approvals WHERE run_id = $1'),
    await q('SELECT d.* FROM tollgate.approval_decisions d JOIN tollgate.approvals a ON a.id = d.approval_id WHERE a.run_id = $1'),
    await q('SELECT * FROM tollgate.chat_messages WHERE run_id = $1'),
    await q('SELECT payload FROM tollgate.events WHERE run_id = $1'),
  ].join('\n');
}

let seq = 0;
async function addMessages(runId: string, who: string) {
  await db.pool.query(`INSERT INTO tollgate.chat_messages (id, platform, kind, run_id, conversation, body) VALUES ($1, 'slack', 'run', $2, 'C1', $3)`, [
    `msg_run_${++seq}`,
    runId,
    JSON.stringify({ text: `Paying ${who}` }),
  ]);
  await db.pool.query(`INSERT INTO tollgate.chat_messages (id, platform, kind, conversation, body, posted_hash) VALUES ($1, 'slack', 'reply', 'C1', $2, 'h')`, [
    `msg_reply_${++seq}`,
    JSON.stringify({ text: `Your runs: ${who}` }),
  ]);
  await db.pool.query(`INSERT INTO tollgate.teams_users (tenant, aad_object_id, name) VALUES ('tn', $1, $2)`, [`aad-${who}`, `${who} Person`]);
  // What a free-text request by this person was understood to mean (never confirmed).
  await db.pool.query(`INSERT INTO tollgate.chat_proposals (id, workflow, version, input, params, asker, place) VALUES ($1, 'demo', 1, $2, $2, '{}', '{}')`, [
    `prop_${++seq}`,
    JSON.stringify({ name: who }),
  ]);
}

describe('retention', () => {
  it('is on without any configuration: 90 days, the daily purge is in the crontab; "off" turns it off; nonsense is refused', () => {
    const defaults = loadProjectConfig(undefined);
    expect(defaults.retention.days).toBe(90);
    expect(parseProjectConfig({}).retention.days).toBe(90);
    const lines = crontab({ retentionDays: defaults.retention.days });
    expect(parseCrontab(lines).map((c) => c.task)).toContain('retention-purge');

    const off = parseProjectConfig({ retention: { days: 'off' } });
    expect(parseCrontab(crontab({ retentionDays: off.retention.days })).map((c) => c.task)).not.toContain('retention-purge');
    expect(parseProjectConfig({ retention: { days: 30 } }).retention.days).toBe(30);
    expect(() => parseProjectConfig({ retention: { days: 0 } })).toThrow(/retention\.days: must be a whole number of days \(1 or more\), or "off"/);
    expect(() => parseProjectConfig({ retention: { days: 'never' } })).toThrow(/retention\.days: must be a whole number of days/);
  });

  it('purges every copy of the personal data of runs finished before the cutoff, keeps live and recent runs, and the chain verifies', async () => {
    const { runtime } = r;
    // Before the cutoff: a succeeded run, a failed run, and a run still waiting for its approval.
    const oldDone = await finished(runtime, 'OLDDONE');
    const oldFailed = await finished(runtime, 'OLDFAILED', true);
    const oldLive = await start(runtime, 'OLDLIVE');
    await addMessages(oldDone, 'OLDDONE');
    await addMessages(oldLive.run.id, 'OLDLIVE');
    await clockApart();
    const cutoff = new Date();
    await clockApart();
    // After it: a recent finished run.
    const recent = await finished(runtime, 'RECENT');
    await addMessages(recent, 'RECENT');
    expect(await everythingOf(oldDone)).toContain('OLDDONE');

    const result = await purgeBefore(db.pool, cutoff);
    expect(result).toMatchObject({ runs: 2, approvals: 2, decisions: 2, chatMessages: 1, replies: 2, teamsUsers: 2, proposals: 2 });
    const proposals = await db.pool.query<{ input: { name: string } }>('SELECT input FROM tollgate.chat_proposals');
    expect(proposals.rows.map((p) => p.input.name)).toEqual(['RECENT']);

    for (const [id, who] of [
      [oldDone, 'OLDDONE'],
      [oldFailed, 'OLDFAILED'],
    ] as const) {
      const all = await everythingOf(id);
      expect(all).not.toContain(who); // input, outputs, summary, params, rationale, tool input, comment, error, bodies, payloads, requester name
      const run = (await db.pool.query('SELECT * FROM tollgate.runs WHERE id = $1', [id])).rows[0];
      expect(run).toMatchObject({ input: {}, output: null, requester: { platform: 'slack', tenant: 'T1', user: 'UREQ' } });
      expect(run.journal_purged_at).not.toBeNull();
      const steps = (await db.pool.query('SELECT input, output FROM tollgate.steps WHERE run_id = $1', [id])).rows;
      expect(steps.every((s) => s.input === null && s.output === null)).toBe(true);
      const apr = (await db.pool.query('SELECT summary, params, rationale, tool_input FROM tollgate.approvals WHERE run_id = $1', [id])).rows;
      expect(apr).toEqual([{ summary: '(purged by retention)', params: {}, rationale: null, tool_input: null }]);
      const payloads = (await db.pool.query('SELECT payload FROM tollgate.events WHERE run_id = $1', [id])).rows;
      expect(payloads.length).toBeGreaterThan(3);
      expect(payloads.every((e) => e.payload === null)).toBe(true);
    }
    // The failure is still told apart (its kind), without its message.
    const failedRun = (await db.pool.query('SELECT error FROM tollgate.runs WHERE id = $1', [oldFailed])).rows[0];
    expect(failedRun.error).toEqual({ name: 'StepFailedError', code: 'TG_STEP_FAILED', message: 'purged by retention' });

    // The live run of the same age and the recent run keep everything.
    for (const [id, who] of [
      [oldLive.run.id, 'OLDLIVE'],
      [recent, 'RECENT'],
    ] as const) {
      const all = await everythingOf(id);
      for (const needle of [`"who":"${who}"`, `Pay ${who}`, `${who} asked for it`, `${who}@example.com`, `Paying ${who}`, `${who} Requester`]) {
        expect(all).toContain(needle);
      }
      const payloads = (await db.pool.query('SELECT payload FROM tollgate.events WHERE run_id = $1', [id])).rows;
      expect(payloads.every((e) => e.payload !== null)).toBe(true);
    }
    expect(await everythingOf(recent)).toContain(`ok, RECENT is a customer`);
    // Replies and directory names: by age.
    const replies = (await db.pool.query(`SELECT body->>'text' AS text FROM tollgate.chat_messages WHERE kind = 'reply'`)).rows.map((m) => m.text);
    expect(replies).toEqual(['Your runs: RECENT']);
    const names = (await db.pool.query(`SELECT aad_object_id, name FROM tollgate.teams_users ORDER BY 1`)).rows;
    expect(names).toEqual([
      { aad_object_id: 'aad-OLDDONE', name: null },
      { aad_object_id: 'aad-OLDLIVE', name: null },
      { aad_object_id: 'aad-RECENT', name: 'RECENT Person' },
    ]);

    // The audit chain verifies, and the purge is recorded with its cutoff before its counts.
    expect(await verifyAuditChain(db.pool)).toMatchObject({ ok: true });
    const records = (await db.pool.query(`SELECT type, payload FROM tollgate.events WHERE run_id IS NULL AND type LIKE 'retention.%' ORDER BY seq`)).rows;
    expect(records).toEqual([
      { type: 'retention.purged', payload: { cutoff: cutoff.toISOString() } },
      { type: 'retention.completed', payload: expect.objectContaining({ cutoff: cutoff.toISOString(), runs: 2 }) },
    ]);

    // The live run goes on; once finished and past a later cutoff, it is purged too.
    await runtime.decide(oldLive.approvalId, ALICE, 'approve');
    await waitForRun(runtime, oldLive.run.id, 'succeeded');
    await purgeBefore(db.pool, new Date(Date.now() + 1000));
    expect(await everythingOf(oldLive.run.id)).not.toContain('OLDLIVE');
    expect(await everythingOf(recent)).not.toContain('RECENT');
    expect(await verifyAuditChain(db.pool)).toMatchObject({ ok: true });
  });

  it('reads only through indexes: no purge statement scans runs, steps, events, approvals, decisions or chat messages', async () => {
    const big = await createTestDb();
    try {
      // Enough rows that a sequential scan is never cheaper for the planner: 10,000 purged runs
      // with their steps, events, approvals, decisions and messages, and a few still to purge.
      await big.pool.query(`
        INSERT INTO tollgate.runs (id, workflow, workflow_version, status, input, created_at, finished_at, journal_purged_at)
          SELECT 'run_' || i, 'w', 1, 'succeeded', '{}', now() - interval '200 days', now() - interval '200 days',
                 CASE WHEN i > 20 THEN now() END
          FROM generate_series(1, 10000) i;
        INSERT INTO tollgate.steps (run_id, idx, name, kind, status) SELECT 'run_' || i, j, 's', 'step', 'succeeded' FROM generate_series(1, 10000) i, generate_series(0, 2) j;
        INSERT INTO tollgate.approvals (id, run_id, step_idx, name, status, policy, summary, params, params_hash)
          SELECT 'apr_' || i, 'run_' || i, 1, 'a', 'approved', '{}', 's', '{}', 'h' FROM generate_series(1, 10000) i;
        INSERT INTO tollgate.approval_decisions (approval_id, principal, decision, comment) SELECT 'apr_' || i, 'p', 'approve', 'c' FROM generate_series(1, 10000) i;
        INSERT INTO tollgate.chat_messages (id, platform, kind, run_id, conversation, created_at)
          SELECT 'msg_' || i, 'slack', CASE WHEN i % 20 = 0 THEN 'reply' ELSE 'run' END, CASE WHEN i % 20 <> 0 THEN 'run_' || i END, 'C',
                 CASE WHEN i % 200 = 0 THEN now() - interval '200 days' ELSE now() END
          FROM generate_series(1, 10000) i;
        INSERT INTO tollgate.events (run_id, type, payload) SELECT 'run_' || (i % 10000 + 1), 't', '{"x": 1}' FROM generate_series(1, 20000) i;
        INSERT INTO tollgate.events (run_id, type, payload) SELECT NULL, 'g', '{"x": 1}' FROM generate_series(1, 1000) i;
        INSERT INTO tollgate.chat_proposals (id, workflow, version, input, params, asker, place, created_at)
          SELECT 'prop_' || i, 'w', 1, '{}', '{}', '{}', '{}', now() - (i || ' minutes')::interval FROM generate_series(1, 10000) i;
        UPDATE tollgate.events SET payload = NULL WHERE run_id IS NULL OR run_id NOT IN (SELECT 'run_' || i FROM generate_series(1, 20) i);
        ANALYZE;`);
      const cutoff = new Date(Date.now() - 90 * 86_400_000);
      const ids = Array.from({ length: 20 }, (_, i) => `run_${i + 1}`);
      const params: Record<keyof typeof PURGE_SQL, unknown[]> = {
        runs: [cutoff, 500],
        steps: [ids],
        approvals: [ids],
        decisions: [ids.map((id) => id.replace('run_', 'apr_'))],
        runMessages: [ids],
        runEvents: [ids, cutoff],
        globalEvents: [cutoff, 5000],
        replies: [cutoff, 5000],
        teamsNames: [cutoff],
        proposals: [cutoff, 5000],
      };
      const scanned: string[] = [];
      const c = await big.pool.connect();
      try {
        await c.query('BEGIN');
        for (const [name, sql] of Object.entries(PURGE_SQL)) {
          // A custom plan for these values, as the purge gets from its unnamed statements.
          const plan = (await c.query(`EXPLAIN ${sql}`, params[name as keyof typeof PURGE_SQL])).rows.map((row) => row['QUERY PLAN']).join('\n');
          for (const m of plan.matchAll(/Seq Scan on (\w+)/g)) if (m[1] !== 'teams_users') scanned.push(`${name}: ${m[0]}`);
        }
        await c.query('ROLLBACK');
      } finally {
        c.release();
      }
      expect(scanned).toEqual([]);

      // And the purge itself, run for real, scans none of them either. It runs on a pool of one
      // connection, so every statement's statistics come from one backend, flushed when asked.
      const one = createPool(big.url, 1, testLogger(), testAuditKey);
      try {
        const stats = async () =>
          (
            await big.pool.query<{ relname: string; seq_scan: string; idx_scan: string }>(
              `SELECT relname, seq_scan::text, coalesce(idx_scan, 0)::text AS idx_scan FROM pg_stat_user_tables WHERE schemaname = 'tollgate'
               AND relname IN ('runs', 'steps', 'events', 'approvals', 'approval_decisions', 'chat_messages') ORDER BY relname`,
            )
          ).rows;
        const before = await stats();
        const result = await purgeBefore(one, cutoff, { vacuumAfterEvents: 0 });
        expect(result).toMatchObject({ runs: 20, approvals: 20, decisions: 20, replies: 50 });
        await one.query('SELECT pg_stat_force_next_flush()');
        // Every one of these tables was read through an index at least once: wait until all have reported.
        const after = await poll(
          async () => {
            const now = await stats();
            return now.every((t, i) => t.idx_scan !== before[i]?.idx_scan) && now;
          },
          { message: 'every table to report an index scan', intervalMs: 100, retryErrors: false },
        );
        expect(after.filter((t, i) => t.idx_scan === before[i]?.idx_scan)).toEqual([]);
        expect(after.map((t) => `${t.relname} ${t.seq_scan}`)).toEqual(before.map((t) => `${t.relname} ${t.seq_scan}`));
      } finally {
        await one.end();
      }
    } finally {
      await big.close();
    }
  });
});
