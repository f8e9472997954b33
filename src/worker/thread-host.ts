/**
 * The worker of `tollgate start`, in a worker thread: the main thread keeps the HTTP server, the
 * chat adapters and intake, so an acknowledgement never waits behind workflow CPU (replays,
 * rendering, JSON) on the same event loop. The thread (src/worker/thread.ts) has its own pool on
 * the same database and login, with this process's audit key, its own runtime and registry (the
 * same project, loaded the same way) and the chat deliverer, and runs `startWorker` as
 * `tollgate worker` does. It starts no embedded PostgreSQL and runs no migrations: this thread did.
 *
 * Why a thread, not a child process: one process tree and one pid for the user, so the embedded
 * database's lease files (src/db/embedded-sharing.ts) and signals (SIGTERM → stop) need nothing
 * new, and the key and the configuration are handed over in memory, never through an environment
 * or a command line.
 *
 * Supervised: a thread that exits or throws is started again with the worker's bounded backoff
 * (RESTART_BACKOFF); the new one first unlocks the jobs of the one that died (nothing of it runs
 * any more), so its runs resume at once. Meanwhile `isRunning()` is false and `whyNotRunning()`
 * says why, for /readyz. While the thread runs, both relay what the thread's own worker reports
 * (it restarts its Graphile runner itself through a database outage).
 */
import { Worker } from 'node:worker_threads';
import type { Config } from '../config/config.ts';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { auditKeyBytes } from '../audit/key.ts';
import { type AuditKey } from '../db/pool-key.ts';
import type pg from 'pg';
import { newProcessId, releaseWorkerJobs, RESTART_BACKOFF, type WorkerHandle } from './worker.ts';
import { supervise, type Supervision } from './supervise.ts';
import { ThreadMetricsRequests } from '../telemetry/metrics-thread.ts';
import type { MetricsJson } from '../telemetry/metrics-registry.ts';

/** What the thread is given (structured-cloned: plain data only). */
export interface WorkerThreadData {
  readonly config: Config;
  /** The app's login (the same URL as the main thread's pool). */
  readonly url: string;
  /** The audit key's bytes and where they came from; in memory only, never logged. */
  readonly auditKey: { readonly bytes: Uint8Array; readonly source: string } | undefined;
  readonly processId: string;
  /** The process id of the thread this one replaces, whose jobs it unlocks first. */
  readonly replaces: string | undefined;
  /** For the tsx bootstrap: tsx's API and the entry to import once it is registered. */
  readonly tsx?: { readonly api: string; readonly entry: string };
}

export type ToThread = { type: 'stop' } | { type: 'beat'; id: number } | { type: 'metrics'; id: number };

export type FromThread =
  | { type: 'started' }
  | { type: 'failed'; message: string }
  | { type: 'status'; running: boolean; why: string | undefined }
  | { type: 'beat'; id: number; error?: string }
  | { type: 'metrics'; id: number; metrics: MetricsJson | undefined }
  | { type: 'stopped' };

export interface WorkerThreadOptions {
  config: Config;
  log: Logger;
  db: { url: string; auditKey: AuditKey | undefined };
  /** The main thread's pool: the thread's jobs are given back on it when the thread is cut off (abandon). */
  pool: pg.Pool;
}

/** A worker handle that also exposes its thread, for tests that crash it. */
export interface ThreadedWorkerHandle extends WorkerHandle {
  /** The running thread, if any (tests terminate it to play a crash). */
  thread(): Worker | undefined;
}

/**
 * The thread's entry. Under tsx or vitest (this file is .ts) worker threads do not inherit the
 * loader, and Node 20 ignores `--import tsx` in a Worker's execArgv for its entry, so a few lines
 * of bootstrap register tsx first; so do compiled entries whose project module is TypeScript.
 */
function threadEntry(config: Config): { file: URL | string; eval: boolean; tsx?: { api: string; entry: string } } {
  const ts = import.meta.url.endsWith('.ts');
  const entry = new URL(ts ? './thread.ts' : './thread.js', import.meta.url);
  if (!ts && !/\.m?ts$/.test(config.projectConfigPath ?? '')) return { file: entry, eval: false };
  // Resolved here (the ESM build: tsx's CommonJS API cannot register from a thread), as the
  // bootstrap runs as an eval'd script that would resolve from the working directory.
  const api = import.meta.resolve('tsx/esm/api');
  const bootstrap = `const { workerData } = require('node:worker_threads');
import(workerData.tsx.api).then((tsx) => { tsx.register(); return import(workerData.tsx.entry); });`;
  return { file: bootstrap, eval: true, tsx: { api, entry: entry.href } };
}

interface Incarnation {
  readonly worker: Worker;
  readonly processId: string;
  running: boolean;
  why: string | undefined;
  /** Settles with the reason once the thread has exited. */
  readonly exited: Promise<string>;
}

/** What every incarnation of one supervised thread shares. */
interface ThreadShared {
  readonly opts: WorkerThreadOptions;
  readonly entry: ReturnType<typeof threadEntry>;
  readonly auditKey: WorkerThreadData['auditKey'];
  /** Heartbeats asked of the thread, by id, until it answers. */
  readonly beats: Map<number, { resolve: () => void; reject: (e: Error) => void }>;
  /** The thread's instruments, for /metrics. */
  readonly metricsRequests: ThreadMetricsRequests;
}

export async function startWorkerThread(opts: WorkerThreadOptions): Promise<ThreadedWorkerHandle> {
  const { config, log } = opts;
  const key = opts.db.auditKey;
  const keyBytes = key ? auditKeyBytes(key) : undefined;
  if (key && !keyBytes) throw new TollgateError('TG_INTERNAL', 'the audit key cannot be handed to the worker thread (it was not made by auditKey())');
  const shared: ThreadShared = {
    opts,
    entry: threadEntry(config),
    auditKey: key && keyBytes ? { bytes: new Uint8Array(keyBytes), source: key.source } : undefined,
    beats: new Map(),
    metricsRequests: new ThreadMetricsRequests(),
  };
  const first = await launchThread(shared, undefined);
  const stopping = new AbortController();

  // The same policy as startWorker's for its runner: a doubling wait, reset after a good while.
  const supervision = supervise<Incarnation>({
    first,
    what: 'worker thread',
    backoff: RESTART_BACKOFF,
    signal: stopping.signal,
    log,
    ended: (gone) => gone.exited,
    restart: (gone) => launchThread(shared, gone.processId),
    whyFailed: (e) => (e as Error).message,
    discard: stopThread,
    describe: (next) => ({ processId: next.processId }),
  });
  return threadHandle(shared, supervision, stopping, first.processId);
}

/** Starts one thread; resolves once its worker runs, rejects if it could not start. */
function launchThread(shared: ThreadShared, replaces: string | undefined): Promise<Incarnation> {
  const { opts, entry, beats, metricsRequests } = shared;
  const { log } = opts;
  return new Promise((resolve, reject) => {
    const processId = newProcessId();
    const data: WorkerThreadData = {
      config: opts.config,
      url: opts.db.url,
      auditKey: shared.auditKey && { bytes: new Uint8Array(shared.auditKey.bytes), source: shared.auditKey.source },
      processId,
      replaces,
      ...(entry.tsx ? { tsx: entry.tsx } : {}),
    };
    const worker = new Worker(entry.file, { eval: entry.eval, workerData: data, name: 'tollgate-worker' });
    let started = false;
    let reason = 'its thread ended';
    let settleExit: (why: string) => void = () => {};
    const me: Incarnation = {
      worker,
      processId,
      running: false,
      why: 'worker starting',
      exited: new Promise<string>((r) => (settleExit = r)),
    };
    worker.on('message', (m: FromThread) => {
      if (m.type === 'started') {
        started = true;
        me.running = true;
        me.why = undefined;
        resolve(me);
      } else if (m.type === 'failed') {
        reason = `could not start: ${m.message}`;
      } else if (m.type === 'status') {
        me.running = m.running;
        me.why = m.why;
      } else if (m.type === 'beat') {
        const waiting = beats.get(m.id);
        beats.delete(m.id);
        if (m.error === undefined) waiting?.resolve();
        else waiting?.reject(new TollgateError('TG_WORKER_THREAD', m.error));
      } else if (m.type === 'metrics') metricsRequests.answer(m.id, m.metrics);
    });
    worker.on('error', (e) => {
      reason = `its thread failed: ${e.message}`;
      log.error({ err: e, processId }, 'the worker thread failed');
    });
    worker.on('exit', (code) => {
      me.running = false;
      if (reason === 'its thread ended' && code !== 0) reason = `its thread exited with code ${code}`;
      for (const [id, waiting] of beats) {
        beats.delete(id);
        waiting.reject(new TollgateError('TG_WORKER_THREAD', `the worker thread ended before the heartbeat (${reason})`));
      }
      metricsRequests.dropAll();
      if (!started) reject(new TollgateError('TG_WORKER_THREAD', reason));
      settleExit(reason);
    });
  });
}

/** Graceful: the thread stops its worker (running steps finish or are released) and closes its pool, then says so. */
async function stopThread(thread: Incarnation): Promise<void> {
  const done = new Promise<void>((resolve) => {
    thread.worker.on('message', (m: FromThread) => m.type === 'stopped' && resolve());
    void thread.exited.then(() => resolve());
  });
  thread.worker.postMessage({ type: 'stop' } satisfies ToThread);
  await done;
  // Nothing of it runs any more; a library's idle socket or timer must not keep it alive.
  await thread.worker.terminate();
  await thread.exited;
}

/** The handle over a supervised thread: its state for /readyz, heartbeats and metrics through messages, and stop. */
function threadHandle(shared: ThreadShared, supervision: Supervision<Incarnation>, stopping: AbortController, firstProcessId: string): ThreadedWorkerHandle {
  const { beats, metricsRequests } = shared;
  const { log } = shared.opts;
  let nextBeat = 0;
  let lastProcessId = firstProcessId;
  let stopped: Promise<void> | undefined;
  return {
    get processId() {
      const current = supervision.current();
      if (current) lastProcessId = current.processId;
      return lastProcessId;
    },
    thread: () => supervision.current()?.worker,
    isRunning: () => {
      const current = supervision.current();
      return !stopping.signal.aborted && current !== undefined && current.running;
    },
    whyNotRunning: () => {
      const current = supervision.current();
      if (stopping.signal.aborted) return 'worker stopped';
      if (!current) return supervision.whyDown() ?? 'worker stopped';
      return current.running ? undefined : (current.why ?? 'worker stopped');
    },
    beat: () => {
      const thread = supervision.current();
      if (!thread) return Promise.reject(new TollgateError('TG_WORKER_THREAD', supervision.whyDown() ?? 'the worker thread is not running'));
      const id = nextBeat++;
      return new Promise<void>((resolve, reject) => {
        beats.set(id, { resolve, reject });
        thread.worker.postMessage({ type: 'beat', id } satisfies ToThread);
      });
    },
    metrics: () => {
      const thread = supervision.current()?.worker;
      return metricsRequests.request(thread && ((id) => thread.postMessage({ type: 'metrics', id } satisfies ToThread)));
    },
    stop: () =>
      (stopped ??= (async () => {
        stopping.abort();
        const running = supervision.current();
        if (running) await stopThread(running);
        // Supervision returns now: its thread has exited, its wait was cut short, or a restart
        // it was making has finished (and supervision has stopped that thread too).
        await supervision.done;
        log.info('worker thread stopped');
      })()),
    // The deadline: whatever the thread still runs ends with it, and its jobs are unlocked from
    // here (a thread whose loop is held could not do it itself).
    abandon: async () => {
      stopping.abort();
      const running = supervision.current();
      if (!running) return;
      await running.worker.terminate();
      await releaseWorkerJobs(shared.opts.pool, running.processId, log);
      log.warn({ processId: running.processId }, 'worker thread cut off at the shutdown deadline; its jobs are unlocked for the next worker');
    },
  };
}
