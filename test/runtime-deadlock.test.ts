/**
 * A person's change to a run that loses a deadlock is run again, not reported as an error.
 * Cancel locks the run row (FOR NO KEY UPDATE, so it does not wait for the KEY SHARE lock every
 * event insert of the run holds), then appends its event, whose trigger locks the run's audit
 * chain; an executor that appended an event of the same run (holding the chain) and then updates
 * the run row holds them the other way round. PostgreSQL rolls one back; Tollgate tries the
 * change again. Seen first as a Teams test's cancel failing with "deadlock detected".
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { defineWorkflow } from '../src/runtime/workflow.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { poll } from './helpers/poll.ts';

const idle = defineWorkflow({ name: 'idle', version: 1, description: 'one step', input: z.object({}), run: async (ctx) => ctx.step('one', () => 1) });

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.close();
});

it('a cancel that deadlocks with a writer of the same run is run again and succeeds', async () => {
  const runtime = new Runtime({ pool: db.pool, registry: new WorkflowRegistry().register(idle), log: testLogger() });
  const run = await runtime.startRun({ workflow: 'idle', input: {} });
  // The "executor": appends an event of the run (so holds its audit chain) in an open transaction.
  const other = await db.pool.connect();
  try {
    // PostgreSQL rolls back the backend that notices the cycle first: the one whose wait passes
    // deadlock_timeout first. This one notices late, so the cancel is the one rolled back.
    await other.query(`SET deadlock_timeout = '20s'`);
    await other.query('BEGIN');
    await other.query(`INSERT INTO tollgate.events (run_id, type, payload) VALUES ($1, 'test.holding_chain', '{}')`, [run.id]);
    // The cancel locks the run, then waits for the chain.
    const cancelled = runtime.cancel(run.id, null);
    // Wait until the cancel is blocked on the chain (it holds the run row by then).
    await poll(
      async () => {
        const { rows } = await db.pool.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO tollgate.events%'`,
        );
        return Number(rows[0]?.n) > 0;
      },
      { message: 'the cancel to wait for the audit chain', intervalMs: 10, retryErrors: false },
    );
    // The "executor" now wants the run row: a cycle. One of the two is rolled back.
    const mine = other.query(`UPDATE tollgate.runs SET updated_at = now() WHERE id = $1`, [run.id]).then(
      () => 'updated',
      (e: { code?: string }) => e.code,
    );
    // The cancel was rolled back (freeing the run row), so this update goes through; its commit
    // frees the chain, and the cancel's second attempt completes.
    expect(await mine).toBe('updated');
    await other.query('COMMIT');
    const row = await cancelled;
    expect(row.cancel_requested_at).not.toBeNull();
    // The person's cancel is recorded exactly once.
    const { rows } = await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM tollgate.events WHERE run_id = $1 AND type = 'run.cancel_requested'`, [
      run.id,
    ]);
    expect(Number(rows[0]?.n)).toBe(1);
  } finally {
    await other.query('RESET deadlock_timeout').catch(() => {});
    other.release();
  }
});
