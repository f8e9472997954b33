/**
 * The soak row: what a worker keeps after many runs (issue 24: a process that runs for months).
 * Each round starts a real worker (WORKER_CONCURRENCY's default of 10) and finishes 1,000 runs,
 * then 9,000 more, of a workflow that sleeps twice and retries a step once (three in-process waits
 * per run, each with an abort listener while it lasts), with 20 runs in flight. After 1k and after
 * 10k runs, once the worker is idle and after a full garbage collection, it reads the heap in
 * use, the RSS, and how many abort listeners Graphile Worker's pool-wide signal holds (its own
 * two when nothing leaks). A heap that grows from 1k to 10k, or listeners above two, is a leak.
 *
 * Like bench/runtime.ts, it wraps the `run-advance` task only to wake the waiting caller when a
 * job ends, and to see the signal Graphile Worker hands the job.
 */
import { getEventListeners } from 'node:events';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Task } from 'graphile-worker';
import { z } from 'zod';
import { createPool } from '../src/db/connect.ts';
import { migrate } from '../src/db/migrate.ts';
import { readRun } from '../src/db/queries/runs.ts';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { newProcessId, startWorker } from '../src/worker/worker.ts';
import { taskList } from '../jobs/index.ts';
import { BENCH_AUDIT_KEY, type BenchSection, type Figure } from './types.ts';

const CONCURRENCY = 10;
const IN_FLIGHT = 20;
const FIRST = 1_000;
const TOTAL = 10_000;
const MB = 1024 * 1024;

const napAndRetry = defineWorkflow({
  name: 'bench-soak',
  version: 1,
  description: 'two 5 ms sleeps and a step that succeeds on its second attempt after a 5 ms backoff',
  input: z.object({}),
  run: async (ctx) => {
    await ctx.sleep('nap', 5);
    const out = await ctx.step(
      'flaky',
      (s) => {
        if (s.attempt === 1) throw new Error('first attempt fails');
        return s.attempt;
      },
      { retry: { maxAttempts: 2, initialDelayMs: 5, factor: 1, jitter: 0 } },
    );
    await ctx.sleep('nap again', 5);
    return out;
  },
}) as unknown as WorkflowDefinition;

/** A full collection before each reading, so the heap figure is what is kept, not what is pending. */
function collector(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

export const soakSection: BenchSection = {
  name: 'soak',
  async setup(ctx) {
    const url = await ctx.database('bench_soak');
    const pool = createPool(url, 2 * CONCURRENCY + 10, ctx.log, BENCH_AUDIT_KEY);
    const registry = new WorkflowRegistry().register(napAndRetry);
    const runtime = new Runtime({ pool, registry, log: ctx.log });
    await migrate(pool, ctx.log);
    const gc = collector();

    const waiters = new Map<string, () => void>();
    let active = 0;
    let signal: AbortSignal | undefined;
    const startSoakWorker = () => {
      const processId = newProcessId();
      const tasks = taskList({ runtime, processId });
      const advance = tasks['run-advance'] as Task;
      tasks['run-advance'] = async (payload, helpers) => {
        signal = helpers.abortSignal;
        active++;
        try {
          await advance(payload, helpers);
        } finally {
          active--;
          const runId = (payload as { runId?: string }).runId;
          if (runId) waiters.get(runId)?.();
        }
      };
      return startWorker({ pool, log: ctx.log, tasks, concurrency: CONCURRENCY, pollIntervalMs: 1000, deadAfterMs: 8_000, processId }); // WORKER_DEAD_AFTER_MS's default
    };

    const oneRun = async () => {
      const run = await runtime.startRun({ workflow: 'bench-soak', input: {} });
      for (;;) {
        await new Promise<void>((resolve) => {
          waiters.set(run.id, resolve);
          // A job that ended before the waiter was set is caught by the status read below.
          setTimeout(resolve, 1000).unref();
        });
        waiters.delete(run.id);
        const status = (await readRun(pool, run.id))?.status;
        if (status === 'succeeded') return;
        if (status === 'failed' || status === 'cancelled') throw new Error(`soak run ${run.id} ended ${status}`);
      }
    };
    /** Finishes `n` runs, IN_FLIGHT at a time. */
    const runMany = async (n: number) => {
      let started = 0;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (started < n) {
            started++;
            await oneRun();
          }
        }),
      );
    };
    const reading = async (runs: number): Promise<Figure[]> => {
      while (active > 0) await new Promise((r) => setTimeout(r, 10));
      gc();
      const mem = process.memoryUsage();
      const listeners = signal ? getEventListeners(signal, 'abort').length : Number.NaN;
      const k = `${runs / 1000}k`;
      return [
        {
          key: `soak.heap_${k}`,
          label: `Soak: heap used after ${k} runs`,
          value: mem.heapUsed / MB,
          unit: 'MB',
          note: 'after a full GC; 2 sleeps + 1 retry per run',
        },
        { key: `soak.rss_${k}`, label: `Soak: RSS after ${k} runs`, value: mem.rss / MB, unit: 'MB' },
        {
          key: `soak.listeners_${k}`,
          label: `Soak: abort listeners on the worker's signal after ${k} runs`,
          value: listeners,
          unit: '',
          note: "Graphile Worker's own: 2",
        },
      ];
    };

    return {
      async measure() {
        const worker = await startSoakWorker();
        try {
          const t0 = performance.now();
          await runMany(FIRST);
          const first = await reading(FIRST);
          await runMany(TOTAL - FIRST);
          const seconds = (performance.now() - t0) / 1000;
          const last = await reading(TOTAL);
          const heap = (f: Figure[]) => f[0]?.value ?? Number.NaN;
          return [
            ...first,
            ...last,
            { key: 'soak.heap_growth', label: 'Soak: heap growth from 1k to 10k runs', value: heap(last) - heap(first), unit: 'MB' },
            { key: 'soak.runs_per_s', label: `Soak: runs/s (${IN_FLIGHT} in flight, concurrency ${CONCURRENCY})`, value: TOTAL / seconds, unit: 'runs/s' },
          ];
        } finally {
          await worker.stop();
        }
      },
      async teardown() {
        await pool.end();
      },
    };
  },
};
