/**
 * Liveness that matches Graphile Worker: a healthy worker whose step runs several times longer
 * than WORKER_DEAD_AFTER_MS keeps its job. Graphile Worker 0.17 locks jobs under its *pool* id
 * (`pool-…`), so the heartbeat must name that id, or the reaper takes the worker's own running
 * jobs for orphans, unlocks them, and a second advance of the same run fails busy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { makeWorkerUtils } from 'graphile-worker';
import { createLogger } from '../src/common/log.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { graphileLogger, newProcessId, reapDeadWorkers, startWorker, type WorkerHandle } from '../src/worker/worker.ts';
import { taskList } from '../jobs/index.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { waitForRun } from './helpers/runtime.ts';

const DEAD_AFTER_MS = 1000;
const STEP_MS = 5000; // five times the staleness limit

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
  await db.pool.query('CREATE TABLE long_step_effects (idem_key text NOT NULL, step text NOT NULL)');
});
afterAll(async () => {
  await db?.close();
});

/** Every line the worker logged, parsed. */
function capturingLogger(lines: Record<string, unknown>[]) {
  return createLogger({
    level: 'debug',
    format: 'json',
    destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  });
}

describe('a live worker running a long step', () => {
  it(`keeps its job for a ${STEP_MS} ms step with WORKER_DEAD_AFTER_MS=${DEAD_AFTER_MS}: the step runs once, nothing is unlocked or recovered, no advance fails busy`, async () => {
    const effect =
      (step: string) =>
      async ({ idempotencyKey }: { idempotencyKey: string }) => {
        if (step === 'slow') await new Promise((r) => setTimeout(r, STEP_MS));
        await db.pool.query('INSERT INTO long_step_effects (idem_key, step) VALUES ($1, $2)', [idempotencyKey, step]);
        return step;
      };
    const wf = defineWorkflow({
      name: 'long-step',
      version: 1,
      description: 'one step much longer than the heartbeat staleness limit',
      input: z.object({}),
      run: async (ctx) => [await ctx.step('before', effect('before')), await ctx.step('slow', effect('slow')), await ctx.step('after', effect('after'))],
    }) as unknown as WorkflowDefinition;

    const lines: Record<string, unknown>[] = [];
    const log = capturingLogger(lines);
    const runtime = new Runtime({ pool: db.pool, registry: new WorkflowRegistry().register(wf), log, lockWaitMs: 200 });
    const processId = newProcessId();
    // Two slots, so a job unlocked under the worker is picked up again at once by its other slot.
    const worker: WorkerHandle = await startWorker({
      pool: db.pool,
      log,
      tasks: taskList({ runtime, processId }),
      concurrency: 2,
      pollIntervalMs: 100,
      deadAfterMs: DEAD_AFTER_MS,
      processId,
    });
    try {
      const run = await runtime.startRun({ workflow: 'long-step', input: {} });
      const done = await waitForRun(runtime, run.id, ['succeeded', 'failed', 'dead_letter'], 30_000);
      expect(done.status).toBe('succeeded');

      const { rows: effects } = await db.pool.query<{ step: string; n: string }>(
        'SELECT step, count(*) AS n FROM long_step_effects GROUP BY step ORDER BY step',
      );
      expect(effects.map((r) => [r.step, Number(r.n)])).toEqual([
        ['after', 1],
        ['before', 1],
        ['slow', 1],
      ]);
      const detail = await runtime.getRun(run.id);
      expect(detail.events.map((e) => e.type)).not.toContain('run.recovered');
      expect(detail.run.recovery_attempts).toBe(0);

      const messages = lines.map((l) => `${String(l.msg)} ${JSON.stringify(l)}`);
      expect(messages.filter((m) => m.includes('unlocked the jobs of dead workers'))).toEqual([]);
      expect(messages.filter((m) => m.includes('TG_RUN_BUSY') || m.includes('held by another executor'))).toEqual([]);

      // The heartbeat names the id Graphile Worker locks jobs under.
      const { rows } = await db.pool.query<{ worker_ids: string[] }>('SELECT worker_ids FROM tollgate.worker_heartbeats WHERE process_id = $1', [processId]);
      expect(rows[0]?.worker_ids.some((id) => id.startsWith('pool-'))).toBe(true);
    } finally {
      await worker.stop();
    }
  }, 60_000);
});

describe('the reaper with pool ids', () => {
  it('still unlocks the jobs of a process whose heartbeat went stale, and of a pool no heartbeat names', async () => {
    const log = createLogger({ level: 'silent', format: 'json' });
    const utils = await makeWorkerUtils({ pgPool: db.pool, logger: graphileLogger(log) });
    try {
      const stale = await utils.addJob('nobody-runs-this', {});
      const orphan = await utils.addJob('nobody-runs-this', {});
      await db.pool.query(
        `UPDATE graphile_worker._private_jobs SET locked_by = CASE id WHEN $1::bigint THEN 'pool-stale' ELSE 'pool-orphan' END, locked_at = now() - interval '1 minute'
         WHERE id IN ($1::bigint, $2::bigint)`,
        [stale.id, orphan.id],
      );
      await db.pool.query(
        `INSERT INTO tollgate.worker_heartbeats (process_id, hostname, pid, worker_ids, beat_at) VALUES ('gone-1', 'h', 1, ARRAY['pool-stale'], now() - interval '1 minute')`,
      );
      const unlocked = await reapDeadWorkers(db.pool, utils, DEAD_AFTER_MS, log);
      expect(unlocked.sort()).toEqual(['pool-orphan', 'pool-stale']);
      const { rows } = await db.pool.query<{ locked_by: string | null }>(
        'SELECT locked_by FROM graphile_worker._private_jobs WHERE id IN ($1::bigint, $2::bigint)',
        [stale.id, orphan.id],
      );
      expect(rows.map((r) => r.locked_by)).toEqual([null, null]);
      expect((await db.pool.query("SELECT 1 FROM tollgate.worker_heartbeats WHERE process_id = 'gone-1'")).rowCount).toBe(0);
    } finally {
      await db.pool.query(
        "DELETE FROM graphile_worker._private_jobs WHERE task_id = (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'nobody-runs-this')",
      );
      await utils.release();
    }
  });
});
