/**
 * Tampering with the audit trail, as the two attackers `audit verify` is meant to catch:
 * - someone holding the application's database login (the least-privilege role, no audit key);
 * - a database superuser without the audit key (who may disable triggers and rewrite anything).
 * Each edit is either refused by the database or reported by `audit verify` with a reason naming
 * what happened.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type pg from 'pg';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { listRunApprovals } from '../src/approvals/index.ts';
import { verifyAuditChain, type VerifyReport } from '../src/audit/verify.ts';
import { writeCheckpoint } from '../src/audit/checkpoint.ts';
import { createPool } from '../src/db/connect.ts';
import { purgeBefore } from '../src/audit/retention.ts';
import { startApp } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { createAppRole, createTestDb, TEST_AUDIT_ENV, type TestDb } from './helpers/db.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';
import { testLogger } from './helpers/log.ts';
import { poll } from './helpers/poll.ts';

const ALICE = 'slack:T1:UALICE';
const BOB = 'slack:T1:UBOB';

const steps = defineWorkflow({
  name: 'steps',
  version: 1,
  description: 'a few steps',
  input: z.object({}),
  run: async (ctx) => {
    const a = await ctx.step('a', () => ({ amount: 100, note: 'customer data' }));
    return { amount: a.amount };
  },
}) as unknown as WorkflowDefinition;

const gate = defineWorkflow({
  name: 'gate',
  version: 1,
  description: 'one approval gate',
  input: z.object({}),
  run: async (ctx) => ctx.approval('sign-off', { summary: 'Sign off', params: { amount: 100 }, policy: { groups: ['finance'], quorum: 2 } }),
}) as unknown as WorkflowDefinition;

let db: TestDb;
let r: TestRuntime;
let app: Awaited<ReturnType<typeof createAppRole>>;
/** A superuser session WITHOUT the audit key. */
let su: pg.Pool;

beforeAll(async () => {
  db = await createTestDb();
  r = await createTestRuntime(db, [steps, gate], { project: parseProjectConfig({ groups: { finance: [ALICE, BOB] } }) });
  app = await createAppRole(db);
  su = createPool(db.url, 2, testLogger());
});
afterAll(async () => {
  await r.stop();
  await su.end();
  await app.close();
  await db.close();
});

async function finishedRun(): Promise<string> {
  const run = await r.runtime.startRun({ workflow: 'steps', input: {} });
  await waitForRun(r.runtime, run.id, 'succeeded');
  return run.id;
}

/** A run whose gate has Alice's decision (quorum 2: still waiting). */
async function decidedGate(): Promise<{ runId: string; approvalId: string }> {
  const run = await r.runtime.startRun({ workflow: 'gate', input: {}, requester: { platform: 'slack', tenant: 'T1', user: 'UREQ' } });
  const pending = await poll(async () => (await listRunApprovals(r.runtime.pool, run.id)).find((a) => a.status === 'pending'), {
    message: `a pending approval in run ${run.id}`,
    retryErrors: false,
  });
  expect(await r.runtime.decide(pending.id, ALICE, 'approve', 'looks fine')).toMatchObject({ kind: 'recorded' });
  return { runId: run.id, approvalId: pending.id };
}

async function firstEvent(runId: string, type: string): Promise<{ id: string; payload: unknown }> {
  const { rows } = await db.pool.query<{ id: string; payload: unknown }>(
    'SELECT id::text, payload FROM tollgate.events WHERE run_id = $1 AND type = $2 ORDER BY seq LIMIT 1',
    [runId, type],
  );
  return rows[0] as { id: string; payload: unknown };
}

/** As a superuser: triggers (the append-only one, the chain one) and foreign keys off. */
async function asSuperuser(sql: string, params: unknown[] = []): Promise<void> {
  const c = await su.connect();
  try {
    await c.query('BEGIN');
    await c.query('SET LOCAL session_replication_role = replica');
    await c.query(sql, params);
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK');
    throw e;
  } finally {
    c.release();
  }
}

function problemsOf(report: VerifyReport, runId: string): string[] {
  return report.problems.filter((p) => p.runId === runId).map((p) => p.reason);
}

async function verify(): Promise<VerifyReport> {
  return verifyAuditChain(db.pool);
}

describe('(a) rewriting an event and recomputing the chain without the key', () => {
  it('as the app role: editing a payload or a hash is refused, and appending without the key is refused', async () => {
    const runId = await finishedRun();
    const ev = await firstEvent(runId, 'step.succeeded');
    await expect(app.keyless.query(`UPDATE tollgate.events SET payload = '{"amount": 1}' WHERE id = $1`, [ev.id])).rejects.toThrow(
      /append-only: UPDATE refused/,
    );
    await expect(app.keyless.query(`UPDATE tollgate.events SET hash = '\\x00' WHERE id = $1`, [ev.id])).rejects.toThrow(/permission denied/);
    await expect(app.keyless.query(`UPDATE tollgate.event_chains SET last_hash = NULL WHERE chain = $1`, [runId])).rejects.toThrow(/permission denied/);
    await expect(app.keyless.query('ALTER TABLE tollgate.events DISABLE TRIGGER events_append_only')).rejects.toThrow(/must be owner/);
    await expect(app.keyless.query('TRUNCATE tollgate.events')).rejects.toThrow(/permission denied/);
    await expect(app.keyless.query(`INSERT INTO tollgate.events (run_id, type) VALUES ($1, 'step.succeeded')`, [runId])).rejects.toThrow(
      /this session has no audit key/,
    );
  });

  it('as the app role with a guessed key: the forged event is reported', async () => {
    const runId = await finishedRun();
    const c = await app.keyless.connect();
    try {
      await c.query(`SET tollgate.audit_ikey = '${'36'.repeat(64)}'`);
      await c.query(`SET tollgate.audit_okey = '${'5c'.repeat(64)}'`);
      await c.query(`INSERT INTO tollgate.events (run_id, type, payload) VALUES ($1, 'run.succeeded', '{"forged": true}')`, [runId]);
    } finally {
      c.release();
    }
    expect(problemsOf(await verify(), runId)).toEqual([expect.stringContaining('written without the audit key')]);
  });

  it('as a superuser without the key: the payload rewritten and every later link recomputed with the unkeyed formula is reported', async () => {
    const runId = await finishedRun();
    const ev = await firstEvent(runId, 'step.succeeded');
    // What an attacker who knows the 000002 formula does: new payload, new digest, then
    // hash = sha256(prev || header || digest) for this event and every later one, and the head.
    await asSuperuser(`UPDATE tollgate.events SET payload = jsonb_set(payload, '{output,amount}', '1000000') WHERE id = $1`, [ev.id]);
    await asSuperuser(`UPDATE tollgate.events SET payload_digest = tollgate.payload_digest(payload) WHERE id = $1`, [ev.id]);
    const { rows } = await su.query<{ id: string }>('SELECT id::text FROM tollgate.events WHERE run_id = $1 AND id >= $2 ORDER BY seq', [runId, ev.id]);
    for (const row of rows) {
      await asSuperuser(
        `UPDATE tollgate.events e SET prev_hash = p.hash,
                hash = sha256(tollgate.event_link_message(p.hash, e.id, e.run_id, e.seq, e.type, e.step_idx, e.actor, e.created_at, e.payload_digest))
           FROM (SELECT (SELECT hash FROM tollgate.events x WHERE x.run_id = $2 AND x.seq = y.seq - 1) AS hash FROM tollgate.events y WHERE y.id = $1) p
          WHERE e.id = $1`,
        [row.id, runId],
      );
    }
    await asSuperuser(`UPDATE tollgate.event_chains c SET last_hash = e.hash FROM tollgate.events e WHERE c.chain = $1 AND e.run_id = $1 AND e.seq = c.seq`, [
      runId,
    ]);
    const report = await verify();
    expect(report.ok).toBe(false);
    expect(report.problems).toContainEqual(
      expect.objectContaining({ eventId: ev.id, runId, reason: expect.stringContaining('written without the audit key') }),
    );
  });
});

describe('(b) deleting a whole run', () => {
  const deleteRun = (runId: string) =>
    asSuperuser(
      `WITH a AS (DELETE FROM tollgate.approval_decisions WHERE approval_id IN (SELECT id FROM tollgate.approvals WHERE run_id = $1)),
            b AS (DELETE FROM tollgate.approvals WHERE run_id = $1),
            s AS (DELETE FROM tollgate.steps WHERE run_id = $1),
            e AS (DELETE FROM tollgate.events WHERE run_id = $1),
            c AS (DELETE FROM tollgate.event_chains WHERE chain = $1),
            p AS (DELETE FROM tollgate.audit_pending WHERE chain = $1)
       DELETE FROM tollgate.runs WHERE id = $1`,
      [runId],
    );

  it('as the app role: deleting its events or its chain is refused', async () => {
    const runId = await finishedRun();
    await expect(app.keyless.query('DELETE FROM tollgate.events WHERE run_id = $1', [runId])).rejects.toThrow(/permission denied/);
    await expect(app.keyless.query('DELETE FROM tollgate.event_chains WHERE chain = $1', [runId])).rejects.toThrow(/permission denied/);
    await expect(app.keyless.query('DELETE FROM tollgate.runs WHERE id = $1', [runId])).rejects.toThrow(/foreign key|violates/);
  });

  it('as a superuser without the key: a run deleted whole after a checkpoint named it is reported', async () => {
    const runId = await finishedRun();
    expect(await writeCheckpoint(r.runtime.pool)).toBeGreaterThanOrEqual(1);
    expect(problemsOf(await verify(), runId)).toEqual([]);
    await deleteRun(runId);
    expect((await su.query('SELECT 1 FROM tollgate.runs WHERE id = $1', [runId])).rowCount).toBe(0);
    const report = await verify();
    expect(report.ok).toBe(false);
    expect(problemsOf(report, runId)).toEqual([expect.stringMatching(/^run .* was deleted: checkpoint event \d+ recorded its event #\d+/)]);
  });

  it('the app role cannot touch the checkpoint queue, nor write a checkpoint without the key', async () => {
    await finishedRun(); // queues its chain
    await expect(app.keyless.query('DELETE FROM tollgate.audit_pending')).rejects.toThrow(/permission denied/);
    await expect(app.keyless.query('SELECT tollgate.audit_checkpoint()')).rejects.toThrow(/no audit key/);
    expect(await writeCheckpoint(app.pool)).toBeGreaterThanOrEqual(0); // the app (with its key) may
  });
});

describe('(c) setting a fresh payload to NULL', () => {
  it('as the app role: allowed by the grants, reported by verify as not retention', async () => {
    const runId = await finishedRun();
    const ev = await firstEvent(runId, 'step.succeeded');
    await app.keyless.query('UPDATE tollgate.events SET payload = NULL WHERE id = $1', [ev.id]);
    expect(problemsOf(await verify(), runId)).toEqual([expect.stringContaining('its payload was removed, but it is newer than any retention purge on record')]);
  });

  it('as a superuser without the key: reported the same way', async () => {
    const runId = await finishedRun();
    const ev = await firstEvent(runId, 'step.succeeded');
    await asSuperuser('UPDATE tollgate.events SET payload = NULL WHERE id = $1', [ev.id]);
    const report = await verify();
    expect(report.problems).toContainEqual(expect.objectContaining({ eventId: ev.id, reason: expect.stringContaining('not retention') }));
  });
});

describe('(d) editing approval_decisions', () => {
  for (const who of ['app role', 'superuser without the key'] as const) {
    const exec = (sql: string, params: unknown[]) => (who === 'app role' ? app.keyless.query(sql, params).then(() => {}) : asSuperuser(sql, params));

    it(`as the ${who}: an edited decision is reported`, async () => {
      const { runId, approvalId } = await decidedGate();
      expect(problemsOf(await verify(), runId)).toEqual([]);
      await exec(`UPDATE tollgate.approval_decisions SET decision = 'reject', comment = 'no' WHERE approval_id = $1 AND principal = $2`, [approvalId, ALICE]);
      expect(problemsOf(await verify(), runId)).toEqual([
        expect.stringMatching(
          new RegExp(`the decision of ${ALICE} on ${approvalId} was edited: its decision \\(the event says approve\\), comment no longer match`),
        ),
      ]);
    });

    it(`as the ${who}: a deleted decision is reported`, async () => {
      const { runId, approvalId } = await decidedGate();
      await exec('DELETE FROM tollgate.approval_decisions WHERE approval_id = $1', [approvalId]);
      expect(problemsOf(await verify(), runId)).toEqual([
        `the decision (approve of ${ALICE} on ${approvalId}) recorded by this event was deleted from approval_decisions`,
      ]);
    });

    it(`as the ${who}: an inserted decision is reported`, async () => {
      const { runId, approvalId } = await decidedGate();
      await exec(`INSERT INTO tollgate.approval_decisions (approval_id, principal, decision, via) VALUES ($1, $2, 'approve', 'slack')`, [approvalId, BOB]);
      expect(problemsOf(await verify(), runId)).toEqual([`the decision of ${BOB} on ${approvalId} has no chained event: it was inserted outside Tollgate`]);
    });
  }
});

describe('least privilege', () => {
  it('with DATABASE_MIGRATION_URL, the owner migrates and grants, and the app runs, decides, checkpoints, purges and verifies as its own role', async () => {
    const fresh = await createTestDb({ migrate: false });
    const role = `app_${new URL(fresh.url).pathname.slice(1)}`;
    await fresh.pool.query(`CREATE ROLE "${role}" LOGIN PASSWORD 'app-secret'`);
    const appUrl = new URL(fresh.url);
    appUrl.username = role;
    appUrl.password = 'app-secret';
    const env = { DATABASE_URL: appUrl.toString(), DATABASE_MIGRATION_URL: fresh.url, ...TEST_AUDIT_ENV, LOG_LEVEL: 'silent', WORKER_POLL_INTERVAL_MS: '100' };
    const started = await startApp({ config: loadConfig(env), log: testLogger(), mode: 'worker' });
    try {
      const pool = started.db.pool;
      expect((await pool.query('SELECT current_user AS u')).rows[0]?.u).toBe(role);
      const run = await started.runtime.startRun({ workflow: 'demo', input: { sleepMs: 0 } });
      await waitForRun(started.runtime, run.id, 'succeeded');
      expect(await writeCheckpoint(pool)).toBeGreaterThanOrEqual(1);
      await purgeBefore(pool, new Date(Date.now() + 1000));
      const report = await verifyAuditChain(pool);
      expect(report.problems).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.purgedPayloads).toBeGreaterThan(0);
      // The app's login owns nothing and cannot switch the audit triggers off.
      await expect(pool.query('ALTER TABLE tollgate.events DISABLE TRIGGER events_append_only')).rejects.toThrow(/must be owner/);
    } finally {
      await started.stop();
      await fresh.pool.query(`DROP OWNED BY "${role}"`).catch(() => {});
      await fresh.close();
      const c = createPool(db.url, 1, testLogger());
      await c.query(`DROP ROLE IF EXISTS "${role}"`).catch(() => {});
      await c.end();
    }
  });

  it("a process whose audit key differs from the database's refuses to start, naming both fingerprints", async () => {
    const env = { DATABASE_URL: db.url, TOLLGATE_AUDIT_KEY: 'ab'.repeat(32), LOG_LEVEL: 'silent' };
    await expect(startApp({ config: loadConfig(env), log: testLogger(), mode: 'none' })).rejects.toThrow(
      /audit key \(from TOLLGATE_AUDIT_KEY, fingerprint [0-9a-f]{16}\) is not the key this database's audit chain is keyed with \(fingerprint [0-9a-f]{16}\)\. Every process must use the same key/,
    );
    expect(() => loadConfig({ TOLLGATE_AUDIT_KEY: 'too-short' })).toThrow(
      /TOLLGATE_AUDIT_KEY: got .*; expected at least 32 random bytes written in hex or base64/,
    );
  });
});
