/**
 * A worker that runs for months leaves nothing behind on Graphile Worker's abort signal, which
 * 0.17 shares across every job of the pool for the pool's life (issue 24, item 6): every sleep
 * and retry wait, and every advance, removes the listener it added, and Node never prints a
 * MaxListenersExceededWarning among the worker's logs, even with every job slot busy: neither in
 * this process nor from a real `tollgate worker`.
 */
import { spawn } from 'node:child_process';
import { getEventListeners } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Task } from 'graphile-worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { demo } from '../src/workflows/demo.ts';
import { newProcessId, startWorker, type WorkerHandle } from '../src/worker/worker.ts';
import { taskList } from '../jobs/index.ts';
import { createTestDb, TEST_AUDIT_ENV, type TestDb } from './helpers/db.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';
import { poll } from './helpers/poll.ts';

const SLEEPS = 20;
const ATTEMPTS = 6; // five retry waits
const WAITS_PER_RUN = SLEEPS + ATTEMPTS - 1;
const RUNS = 10_000 / WAITS_PER_RUN;

/** Short sleeps and a step that fails five times, each wait slept in-process (`inlineWaitMaxMs`). */
const napper = defineWorkflow({
  name: 'napper',
  version: 1,
  description: 'sleeps and retries',
  input: z.object({}),
  run: async (ctx) => {
    // 10 ms: long enough to outlast the journal write before it, so each one is a real wait.
    for (let i = 0; i < SLEEPS; i++) await ctx.sleep(`nap ${i}`, 10);
    return ctx.step(
      'flaky',
      (s) => {
        if (s.attempt < ATTEMPTS) throw new Error(`attempt ${s.attempt} fails`);
        return 'done';
      },
      { retry: { maxAttempts: ATTEMPTS, initialDelayMs: 10, factor: 1, jitter: 0 } },
    );
  },
}) as unknown as WorkflowDefinition;

let db: TestDb;
let t: TestRuntime;
let worker: WorkerHandle | undefined;
const warnings: Error[] = [];
const onWarning = (w: Error) => void warnings.push(w);

beforeAll(async () => {
  db = await createTestDb();
  t = await createTestRuntime(db, [napper], { worker: false });
  process.on('warning', onWarning);
});
afterAll(async () => {
  process.off('warning', onWarning);
  await worker?.stop();
  await db?.close();
});

it(
  `leaves no abort listener on the worker's shared signal after ${RUNS * WAITS_PER_RUN} sleeps and retry waits, and prints no MaxListenersExceededWarning`,
  { timeout: 180_000 },
  async () => {
    // The real worker, as `tollgate worker` starts it (WORKER_CONCURRENCY's default of 10), with
    // the run-advance task wrapped only to see the signal Graphile Worker hands it.
    const signals = new Map<AbortSignal, number>();
    const processId = newProcessId();
    const tasks = taskList({ runtime: t.runtime, processId });
    const advance = tasks['run-advance'] as Task;
    tasks['run-advance'] = (payload, helpers) => {
      if (!signals.has(helpers.abortSignal)) signals.set(helpers.abortSignal, getEventListeners(helpers.abortSignal, 'abort').length);
      return advance(payload, helpers);
    };
    worker = await startWorker({ pool: db.pool, log: t.runtime.log, tasks, concurrency: 10, pollIntervalMs: 100, deadAfterMs: 15_000, processId });

    // One run alone first: what the signal holds before any advance of ours (Graphile Worker's own).
    const first = await t.runtime.startRun({ workflow: 'napper', input: {} });
    await waitForRun(t.runtime, first.id, 'succeeded');
    const [[signal, before]] = [...signals] as [[AbortSignal, number]];

    const runs = await Promise.all(Array.from({ length: RUNS - 1 }, () => t.runtime.startRun({ workflow: 'napper', input: {} })));
    let done = 0;
    await poll(
      async () => {
        const { rows } = await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM tollgate.runs WHERE id = ANY($1) AND status = 'succeeded'", [
          runs.map((r) => r.id),
        ]);
        done = rows[0]?.n ?? 0;
        return done === runs.length;
      },
      { message: `${runs.length} runs to succeed`, detail: () => `${done} have.`, timeoutMs: 150_000, intervalMs: 200, retryErrors: false },
    );

    // A job counts as done a moment after its run does: wait for the last advances to let go.
    await poll(() => getEventListeners(signal, 'abort').length === before, {
      message: `the worker's abort signal to hold its ${before} listeners again`,
      detail: () => `It holds ${getEventListeners(signal, 'abort').length}.`,
      timeoutMs: 10_000,
    });
    expect(signals.size, 'one pool, one signal, for the whole soak').toBe(1);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message)).toEqual([]);
    await worker.stop(); // it knows only this test's workflow: the next test's jobs are not for it
    worker = undefined;
  },
);

it('`tollgate worker` prints no MaxListenersExceededWarning among its logs while it runs workflows that sleep and retry', { timeout: 120_000 }, async () => {
  const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'worker'], {
    env: {
      ...process.env,
      DATABASE_URL: db.url,
      ...TEST_AUDIT_ENV,
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      WORKER_POLL_INTERVAL_MS: '100',
      TOLLGATE_DATA_DIR: '/nonexistent-tollgate-listeners-test',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    await poll(() => output.includes('worker started'), { message: '`tollgate worker` to start', detail: () => output.slice(-3000), timeoutMs: 60_000 });
    // `demo` with a sleep and two retry waits per run: 60 waits in all, at WORKER_CONCURRENCY's default.
    const runtime = (await createTestRuntime(db, [demo], { worker: false })).runtime;
    const runs = await Promise.all(
      Array.from({ length: 20 }, () => runtime.startRun({ workflow: 'demo', input: { sleepMs: 20, failAt: 'transform', failTimes: 2 } })),
    );
    for (const run of runs) await waitForRun(runtime, run.id, 'succeeded', 60_000);
    expect(output).not.toContain('MaxListenersExceededWarning');
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});
