/**
 * Tollgate's runtime through its real path: `runtime.startRun` (run row + event + Graphile job in
 * one transaction) → Graphile Worker picks the job → `run-advance` → executor (advisory lock,
 * replay, journal writes) → run succeeded. The workflow is five no-op steps.
 *
 * The only addition is a wrapper around the `run-advance` task that wakes the waiting caller when
 * the job ends; the caller then reads the run's status (one query) to confirm it finished.
 */
import type { Task } from 'graphile-worker';
import type pg from 'pg';
import { z } from 'zod';
import { createPool } from '../src/db/connect.ts';
import { migrate } from '../src/db/migrate.ts';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { newProcessId, startWorker } from '../src/worker/worker.ts';
import { taskList } from '../jobs/index.ts';
import { BENCH_AUDIT_KEY, measureWorkflowSystem, type BenchContext, type BenchSection } from './types.ts';

export const CONCURRENT = 10;

export const fiveNoopSteps = defineWorkflow({
  name: 'bench-five-steps',
  version: 1,
  description: 'five no-op steps',
  input: z.object({}),
  run: async (ctx) => {
    for (let i = 1; i <= 5; i++) await ctx.step(`s${i}`, () => i);
    return 'done';
  },
}) as unknown as WorkflowDefinition;

/** Tollgate's runtime and worker on the database `url`, ready for `oneRun()` (also bench/statements.ts). */
export async function setupTollgate(ctx: BenchContext, url: string): Promise<{ pool: pg.Pool; oneRun: () => Promise<void>; teardown: () => Promise<void> }> {
  const pool = createPool(url, 40, ctx.log, BENCH_AUDIT_KEY);
  const registry = new WorkflowRegistry().register(fiveNoopSteps);
  const runtime = new Runtime({ pool, registry, log: ctx.log });
  await migrate(pool, ctx.log);

  const waiters = new Map<string, () => void>();
  const processId = newProcessId();
  const tasks = taskList({ runtime, processId });
  const advance = tasks['run-advance'] as Task;
  tasks['run-advance'] = async (payload, helpers) => {
    try {
      await advance(payload, helpers);
    } finally {
      const runId = (payload as { runId?: string }).runId;
      if (runId) waiters.get(runId)?.();
    }
  };
  const worker = await startWorker({
    pool,
    log: ctx.log,
    tasks,
    concurrency: CONCURRENT, // WORKER_CONCURRENCY's default
    pollIntervalMs: 1000,
    deadAfterMs: 8_000, // WORKER_DEAD_AFTER_MS's default
    processId,
  });

  const oneRun = async () => {
    const run = await runtime.startRun({ workflow: 'bench-five-steps', input: {} });
    for (;;) {
      await new Promise<void>((resolve) => {
        waiters.set(run.id, resolve);
        // A job that ended before the waiter was set is caught by the status read below.
        setTimeout(resolve, 1000).unref();
      });
      waiters.delete(run.id);
      const { rows } = await pool.query<{ status: string }>('SELECT status FROM tollgate.runs WHERE id = $1', [run.id]);
      const status = rows[0]?.status;
      if (status === 'succeeded') return;
      if (status === 'failed' || status === 'cancelled') throw new Error(`bench run ${run.id} ended ${status}`);
    }
  };

  return {
    pool,
    oneRun,
    async teardown() {
      await worker.stop();
      await pool.end();
    },
  };
}

export const runtimeSection: BenchSection = {
  name: 'tollgate',
  async setup(ctx) {
    const { pool, oneRun, teardown } = await setupTollgate(ctx, await ctx.database('bench_tollgate'));
    return {
      measure: () =>
        measureWorkflowSystem(ctx, pool, { key: 'tollgate', name: 'Tollgate', latencyLabel: 'enqueue → finished', concurrent: CONCURRENT, oneRun }),
      teardown,
    };
  },
};
