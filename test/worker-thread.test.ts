/**
 * `tollgate start` (startApp, mode 'all') runs its worker in a worker thread: the HTTP server
 * answers while a workflow step holds the worker's event loop; the thread's own pool carries the
 * audit key (its runs append events); a thread that exits or throws is restarted, /readyz says so
 * meanwhile, and the run it was executing completes; stop() ends the thread after its worker.
 * TOLLGATE_WORKER_THREAD=off keeps the worker on the main thread.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import type { ThreadedWorkerHandle } from '../src/worker/thread-host.ts';
import { createTestDb, TEST_AUDIT_ENV, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { waitForRun } from './helpers/runtime.ts';
import { poll } from './helpers/poll.ts';

const FIXTURE = path.resolve(import.meta.dirname, 'fixtures/thread-project.ts');
let db: TestDb;
let dir: string;
const apps: App[] = [];

beforeAll(async () => {
  db = await createTestDb();
  dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-thread-'));
});
afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop();
});
afterAll(async () => {
  await db.close();
});

async function start(env: Record<string, string> = {}): Promise<App> {
  const config = loadConfig({
    DATABASE_URL: db.url,
    ...TEST_AUDIT_ENV,
    TOLLGATE_CONFIG: FIXTURE,
    PORT: '0',
    LOG_LEVEL: 'silent',
    WORKER_POLL_INTERVAL_MS: '100',
    ...env,
  });
  const app = await startApp({ config, log: testLogger(), mode: 'all' });
  apps.push(app);
  return app;
}

async function readyz(app: App): Promise<{ status: number; body: { ok: boolean; reasons?: string[] } }> {
  const res = await fetch(`${app.url}/readyz`);
  return { status: res.status, body: (await res.json()) as { ok: boolean; reasons?: string[] } };
}

const workerConnections = async () =>
  Number(
    (
      await db.pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tollgate-worker'`,
      )
    ).rows[0]?.n,
  );

describe('tollgate start runs its worker in a thread', () => {
  it('executes runs off the HTTP server’s thread, with the audit key, and answers HTTP while a step holds the worker', async () => {
    const app = await start();
    expect(await readyz(app)).toEqual({ status: 200, body: { ok: true } });

    const where = await app.runtime.startRun({ workflow: 'where', input: {} });
    const done = await waitForRun(app.runtime, where.id, ['succeeded', 'failed'], 60_000);
    // Its events were appended by the thread's pool: the audit key reached it.
    expect(done).toMatchObject({ status: 'succeeded', output: { isMainThread: false } });
    expect(await workerConnections()).toBeGreaterThan(0);

    // A step that never yields its event loop: the HTTP server must still answer.
    const holding = path.join(dir, 'holding');
    const release = path.join(dir, 'release');
    const hog = await app.runtime.startRun({ workflow: 'hog', input: { holding, release } });
    await poll(() => (existsSync(holding) ? true : undefined), { message: 'the hog step to hold its loop', timeoutMs: 60_000, retryErrors: false });
    expect((await readyz(app)).status).toBe(200);
    await writeFile(release, 'go');
    expect(await waitForRun(app.runtime, hog.id, ['succeeded', 'failed'], 90_000)).toMatchObject({ status: 'succeeded', output: 'released' });
  }, 180_000);

  for (const how of ['exit', 'throw'] as const) {
    it(`restarts a thread that ${how === 'exit' ? 'exits' : 'throws'} mid-step, says so on /readyz meanwhile, and the run completes`, async () => {
      const app = await start();
      const worker = app.worker as ThreadedWorkerHandle;
      const first = worker.processId;
      const crashed = new Promise<number>((resolve) => worker.thread()?.once('exit', resolve));

      const run = await app.runtime.startRun({ workflow: 'crash-once', input: { marker: path.join(dir, `crashed-${how}`), how } });
      expect(await crashed).toBe(1);
      const down = await poll(
        async () => {
          const r = await readyz(app);
          return r.status === 503 ? r : undefined;
        },
        { message: '/readyz to report the worker down', timeoutMs: 60_000, retryErrors: false },
      );
      const why = how === 'exit' ? 'its thread exited with code 1' : 'its thread failed: a bug in a callback';
      expect(down.body.reasons).toEqual([`worker stopped (${why}); restarting it (attempt 1)`]);

      const done = await waitForRun(app.runtime, run.id, ['succeeded', 'failed', 'dead_letter'], 90_000);
      expect(done).toMatchObject({ status: 'succeeded', output: ['before', 'worker thread', 'after'], recovery_attempts: 1 });
      // A new thread, under a new process id; the test's own thread was never touched.
      expect(worker.processId).not.toBe(first);
      expect(worker.isRunning()).toBe(true);
      expect(await readyz(app)).toEqual({ status: 200, body: { ok: true } });
    }, 180_000);
  }

  it('stop() stops the worker in the thread, closes its pool and ends the thread', async () => {
    const app = await start();
    const thread = (app.worker as ThreadedWorkerHandle).thread() as Worker;
    let exitCode: number | undefined;
    thread.once('exit', (code) => (exitCode = code));
    const processId = app.worker?.processId;
    await app.worker?.beat(); // a heartbeat through the thread
    expect((await db.pool.query('SELECT 1 FROM tollgate.worker_heartbeats WHERE process_id = $1', [processId])).rowCount).toBe(1);

    apps.splice(apps.indexOf(app), 1);
    await app.stop();
    expect(exitCode).toBeDefined();
    expect(thread.threadId).toBe(-1);
    expect(app.worker?.isRunning()).toBe(false);
    // The worker stopped gracefully (its heartbeat is gone) and its pool is closed.
    expect((await db.pool.query('SELECT 1 FROM tollgate.worker_heartbeats WHERE process_id = $1', [processId])).rowCount).toBe(0);
    await poll(async () => ((await workerConnections()) === 0 ? true : undefined), {
      message: 'the thread’s connections to close',
      timeoutMs: 10_000,
      retryErrors: false,
    });
  }, 120_000);

  it('TOLLGATE_WORKER_THREAD=off keeps the worker on the main thread', async () => {
    const app = await start({ TOLLGATE_WORKER_THREAD: 'off' });
    const run = await app.runtime.startRun({ workflow: 'where', input: {} });
    expect(await waitForRun(app.runtime, run.id, ['succeeded', 'failed'], 60_000)).toMatchObject({ status: 'succeeded', output: { isMainThread: true } });
    expect(() => loadConfig({ TOLLGATE_WORKER_THREAD: 'maybe' })).toThrow(/TOLLGATE_WORKER_THREAD: got "maybe"; expected one of "on", "off"$/m);
  }, 120_000);
});
