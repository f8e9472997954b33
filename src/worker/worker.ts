/**
 * The worker: Graphile Worker running Tollgate's tasks (`jobs/`) on the shared pool, plus the
 * heartbeat that makes crash recovery fast, and the supervision that keeps it running through a
 * database outage.
 *
 * Graphile Worker leaves a job locked by a dead worker for four hours. Each worker process
 * therefore records a heartbeat in `tollgate.worker_heartbeats`, naming the ids its runner locks
 * jobs under (Graphile Worker 0.17 locks under its pool id, `pool-…`); every live process, on each
 * beat (every quarter of `WORKER_DEAD_AFTER_MS`), unlocks the jobs of processes whose heartbeat
 * is older than `WORKER_DEAD_AFTER_MS` (`forceUnlockWorkers`), so an interrupted run resumes
 * within seconds of any worker being alive (at most 10 s after a crash, with the default 8 s).
 * Jobs locked by an id no live heartbeat names (a process that died before its first beat) are
 * unlocked the same way once their lock is that old. A job locked by a live process is never
 * unlocked, however long its step runs. A process of this machine that is certainly gone (its
 * pid free, or taken by a later process: src/common/process-stamp.ts) is reaped at once, on the
 * next beat of any process here (the first one at start-up), so a run interrupted by a crash
 * resumes within seconds of the restart instead of after WORKER_DEAD_AFTER_MS.
 *
 * When the database goes away, nothing here ends the process: failed beats are retried, and a
 * runner that Graphile Worker shut down (a job it could neither complete nor fail) is started
 * again with a bounded backoff once the database answers; /readyz reports both meanwhile. When it
 * is back, every heartbeat is stale: a process that was cut off judges no other by age until the
 * others have had `WORKER_DEAD_AFTER_MS` to beat again (`ageJudgement`), so no live worker is
 * taken for dead.
 */
import { EventEmitter, defaultMaxListeners, setMaxListeners } from 'node:events';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { Logger as GraphileLogger, makeWorkerUtils, run, type Runner, type TaskList, type WorkerEvents, type WorkerUtils } from 'graphile-worker';
import { withTransaction } from '../db/transaction.ts';
import type { Logger } from '../common/log.ts';
import {
  deleteHeartbeat,
  deleteHeartbeats,
  heartbeatsOnHost,
  insertHeartbeat,
  lockDeadHeartbeats,
  notifyJobsAvailable,
  orphanedLockIds,
  recordHeartbeat,
  takeHeartbeat,
} from '../db/queries/workers.ts';
import { isGoneHere, thisProcessStamp } from '../common/process-stamp.ts';
import type { Backoff } from '../common/backoff.ts';
import { supervise, type Supervision } from './supervise.ts';
import { observeQueueLag } from '../telemetry/metrics.ts';
import type { MetricsJson } from '../telemetry/metrics-registry.ts';

export interface WorkerOptions {
  pool: pg.Pool;
  log: Logger;
  tasks: TaskList;
  concurrency: number;
  pollIntervalMs: number;
  deadAfterMs: number;
  /** Identifies this process in heartbeats and logs; see newProcessId(). */
  processId: string;
  /** Graphile Worker crontab lines (scheduled tasks such as retention); none when unset. */
  crontab?: string;
  /**
   * On stop, steps still running after this long see their signal aborted (Graphile Worker's
   * gracefulShutdownAbortTimeout; its default, 5 s, when unset). Half the shutdown timeout, so a
   * step that honours its signal is suspended before the deadline abandons it.
   */
  abortStepsAfterMs?: number;
  /**
   * The process id of an earlier worker known to be gone (a worker thread that exited): its jobs
   * are unlocked and its heartbeat deleted at start, without waiting WORKER_DEAD_AFTER_MS.
   */
  replaces?: string;
}

export function newProcessId(): string {
  return `${os.hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

export interface WorkerHandle {
  readonly processId: string;
  /** False once stopped, and while Graphile Worker's runner is being restarted after it died. */
  isRunning(): boolean;
  /** Why the worker is not running (for /readyz), or undefined while it runs. */
  whyNotRunning(): string | undefined;
  stop(): Promise<void>;
  /**
   * The shutdown deadline passed with a job still running: give its jobs back now (unlocked for
   * the next worker, not after WORKER_DEAD_AFTER_MS) and forget this worker's heartbeat. What still
   * runs here is cut off when the process exits, which follows at once.
   */
  abandon(): Promise<void>;
  /** Runs one heartbeat-and-reap cycle now (tests and start-up). */
  beat(): Promise<void>;
  /** A worker in a thread of its own: its instruments for this thread's /metrics (src/telemetry/metrics-thread.ts). */
  metrics?(): Promise<MetricsJson | undefined>;
}

/** First and longest wait before restarting a runner that died (doubling in between). */
export const RESTART_BACKOFF: Backoff = { firstMs: 1000, maxMs: 10_000 };

export function graphileLogger(log: Logger): GraphileLogger {
  return new GraphileLogger((scope) => (logLevel, message, meta) => {
    // LogLevel is a `const enum` in @graphile/logger (no runtime object to import): compare its string values.
    const level: string = logLevel;
    const fields = { ...scope, ...(meta ?? {}) };
    const l = log.child({ component: 'graphile-worker' });
    if (level === 'error') l.error(fields, message);
    else if (level === 'warning') l.warn(fields, message);
    else if (level === 'info')
      l.debug(fields, message); // Graphile's info lines are per-job chatter
    else l.trace(fields, message);
  });
}

/** One Graphile Worker runner, with the ids it locks jobs under and the reason it stopped. */
interface LaunchedRunner {
  readonly runner: Runner;
  /**
   * Graphile Worker 0.17 writes its *pool* id (`pool-…`) to `locked_by`, not a worker id; the
   * worker ids (`worker-…`) are kept too, as earlier versions locked under those.
   */
  readonly lockIds: readonly string[];
  stopReason(): string;
  /**
   * Settles when the runner has ended, or ABANDON_AFTER_MS after a fatal pool error if it has
   * not: Graphile Worker 0.17's pool can hang in its graceful shutdown after several failed
   * completeJob/failJob batches (its batcher's pending count goes below zero, so releasing the
   * batcher waits forever), which would leave this process beating for a pool that takes no
   * jobs and whose locked jobs nobody may take. An abandoned pool is inactive (it takes no new
   * job); what it still runs is serialised with its replacement by each run's advisory lock.
   */
  ended: Promise<'ended' | 'abandoned'>;
}

/** How long a pool that reported a fatal error may take to shut down before it is abandoned. */
export const ABANDON_AFTER_MS = 5000;

async function launchRunner(opts: WorkerOptions, logger: GraphileLogger): Promise<LaunchedRunner> {
  const lockIds: string[] = [];
  let reason = 'its runner ended';
  const events: WorkerEvents = new EventEmitter() as WorkerEvents;
  // Emitted synchronously while run() builds the pool, so the ids are known when it returns.
  events.on('pool:create', ({ workerPool }) => {
    lockIds.push(workerPool.id);
    // Every job of the pool shares this signal: each running advance holds one listener on it
    // until it ends (src/common/abort.ts), on top of Graphile Worker's own. Node's default of ten
    // would warn of a leak whenever ten runs are mid-step at once; a real leak still passes this.
    setMaxListeners(defaultMaxListeners + opts.concurrency, workerPool.abortSignal);
  });
  events.on('worker:create', ({ worker }) => void lockIds.push(worker.workerId));
  events.on('job:start', ({ job }) => observeQueueLag(job.task_identifier, job.run_at));
  let abandon: (() => void) | undefined;
  const abandoned = new Promise<'abandoned'>((resolve) => {
    abandon = () => resolve('abandoned');
  });
  events.on('pool:fatalError', ({ action, error }) => {
    reason = `${action} failed: ${(error as Error)?.message ?? String(error)}`;
    setTimeout(() => abandon?.(), ABANDON_AFTER_MS).unref();
  });
  const runner = await run({
    pgPool: opts.pool,
    taskList: opts.tasks,
    concurrency: opts.concurrency,
    pollInterval: opts.pollIntervalMs,
    noHandleSignals: true,
    // An explicit (possibly empty) crontab, so no `crontab` file in the working directory is read.
    crontab: opts.crontab ?? '',
    logger,
    events,
    preset: {
      worker: {
        // Unbatched (the default, -1), Graphile calls completeJob/failJob without awaiting them:
        // when the database is away the rejection is unhandled and Node ends the process. Batched,
        // a failure goes to the pool's error handler ('pool:fatalError'), which shuts the pool down
        // gracefully; startWorker then restarts the runner. 0 batches only calls of the same tick.
        completeJobBatchDelay: 0,
        failJobBatchDelay: 0,
        // A burst of clicks or wake-ups is fetched (and locked) a worker's worth at a time, one
        // round trip instead of one per job. Its jobs stay locked under this pool's id, which its
        // heartbeat names, until a worker of this process runs them.
        localQueue: { size: opts.concurrency },
        ...(opts.abortStepsAfterMs !== undefined ? { gracefulShutdownAbortTimeout: opts.abortStepsAfterMs } : {}),
      },
    },
  });
  const ended = Promise.race([
    runner.promise.then(
      () => 'ended' as const,
      () => 'ended' as const,
    ),
    abandoned,
  ]);
  return { runner, lockIds, stopReason: () => reason, ended };
}

export async function startWorker(opts: WorkerOptions): Promise<WorkerHandle> {
  const { pool, log, processId } = opts;
  const logger = graphileLogger(log);
  const utils: WorkerUtils = await makeWorkerUtils({ pgPool: pool, logger });
  if (opts.replaces) {
    await releaseGoneWorker(pool, utils, opts.replaces, log).catch(async (e: unknown) => {
      await Promise.resolve(utils.release()).catch(() => {});
      throw e;
    });
  }
  await insertHeartbeat(pool, { processId, hostname: os.hostname(), pid: process.pid, stamp: thisProcessStamp() });

  let first: LaunchedRunner;
  try {
    first = await launchRunner(opts, logger);
  } catch (e) {
    await Promise.resolve(utils.release()).catch(() => {});
    throw e;
  }
  // Read through `runner` (the supervised one, or the first before supervision starts).
  // Explicitly undefined until superviseRunner returns: the first heartbeat below reads it before then.
  let supervision: Supervision<LaunchedRunner> | undefined = undefined;
  const runner = () => (supervision ? supervision.current() : first);
  const heartbeat = startHeartbeat(opts, utils, () => runner()?.lockIds ?? []);
  await heartbeat.beat().catch((e: unknown) => log.warn({ err: e }, 'first worker heartbeat failed'));

  const stopping = new AbortController();
  supervision = superviseRunner(opts, logger, utils, first, heartbeat.beat, stopping.signal);
  log.info({ processId, concurrency: opts.concurrency }, 'worker started');

  let stopped: Promise<void> | undefined;
  return {
    processId,
    isRunning: () => !stopping.signal.aborted && runner() !== undefined,
    whyNotRunning: () => (stopping.signal.aborted ? 'worker stopped' : runner() ? undefined : (supervision?.whyDown() ?? 'worker stopped')),
    beat: heartbeat.beat,
    stop: () =>
      (stopped ??= (async () => {
        stopping.abort();
        heartbeat.stop();
        // Graceful: stop taking jobs, let running ones finish (steps past the abort timeout see
        // their signal aborted and the run is suspended, to be resumed by another worker).
        await runner()
          ?.runner.stop()
          .catch((e: unknown) => log.warn({ err: e }, 'worker stop'));
        await supervision?.done;
        await deleteHeartbeat(pool, processId).catch(() => {});
        await Promise.resolve(utils.release()).catch(() => {});
        log.info({ processId }, 'worker stopped');
      })()),
    abandon: async () => {
      stopping.abort();
      heartbeat.stop();
      const lockIds = [...(runner()?.lockIds ?? [])];
      await utils.forceUnlockWorkers(lockIds);
      await deleteHeartbeat(pool, processId);
      log.warn({ processId, workers: lockIds }, 'worker abandoned at the shutdown deadline; its jobs are unlocked for the next worker');
    },
  };
}

/**
 * Gives back the jobs of a worker of this process that is gone or being cut off (a worker thread
 * terminated at the shutdown deadline), on `pool`: its jobs unlocked now, its heartbeat deleted.
 */
export async function releaseWorkerJobs(pool: pg.Pool, processId: string, log: Logger): Promise<void> {
  const utils = await makeWorkerUtils({ pgPool: pool, logger: graphileLogger(log) });
  try {
    await releaseGoneWorker(pool, utils, processId, log);
  } finally {
    await Promise.resolve(utils.release()).catch(() => {});
  }
}

/**
 * How often a worker beats (and reaps): a quarter of `deadAfterMs`. A process killed just after a
 * beat is judged dead by the first beat of another process more than `deadAfterMs` later, so at
 * most `deadAfterMs` + this after the crash (10 s with the default 8 s); a live process is taken
 * for dead only when four beats in a row did not land.
 */
export function beatIntervalMs(deadAfterMs: number): number {
  return Math.max(250, Math.floor(deadAfterMs / 4));
}

/**
 * Whether this process may judge other processes by the age of their heartbeats. After an
 * outage longer than `deadAfterMs` every heartbeat is stale, the live processes' too: the first
 * process to beat again would take the others, which have not beaten yet, for dead and unlock
 * their jobs. So a process that was cut off from the database for more than half the window
 * (its heartbeat writes failed for that long, or one took that long to land) judges others by
 * age again only once it has recorded its own heartbeat for `deadAfterMs` since: every live
 * process has beaten again by then. (Cut off for less, the others, who beat every quarter of
 * the window, are at most three quarters of it old when this one is back; a failed beat or two
 * does not hold the reaper back.) A process that just started judges at once (the restart
 * after a crash elsewhere), and a process of this machine known to be gone is always reaped at
 * once (that is certain, not a matter of age). `now` is a monotonic clock in ms.
 */
export function ageJudgement(deadAfterMs: number, now: () => number = () => performance.now()) {
  let lastRecorded = now();
  let failedSince = false;
  let judgeFrom = -Infinity;
  return {
    /** A heartbeat write failed. */
    failed(): void {
      failedSince = true;
    },
    /**
     * A heartbeat write that began at `startedAt` landed: whether this process had been cut off
     * (the wait starts now), and whether others may be judged by age now.
     */
    recorded(startedAt: number): { cutOff: boolean; byAge: boolean } {
      const t = now();
      const cutOff = (failedSince && t - lastRecorded > deadAfterMs / 2) || t - startedAt > deadAfterMs / 2;
      if (cutOff) judgeFrom = t + deadAfterMs;
      failedSince = false;
      lastRecorded = t;
      return { cutOff, byAge: t >= judgeFrom };
    },
  };
}

/**
 * The heartbeat: a beat every `beatIntervalMs`, each also reaping dead workers (by age only when
 * `ageJudgement` allows). `lockIds` names the ids the current runner locks jobs under.
 *
 * A beat takes a connection of the shared pool, not one of its own: of the pool's connections a
 * running job holds at most one for long (its advance's), Graphile Worker one (LISTEN), and the
 * pool has at least WORKER_CONCURRENCY + 5 (src/config/config.ts), so a beat waits at most for a
 * short query, never behind a step. It runs on the steps' event loop, on purpose: a loop a step
 * keeps busy for `deadAfterMs` runs none of its jobs either, and is taken for dead (harmless: its
 * runs' locks are still held, so no step runs twice; its other jobs go to live workers).
 */
function startHeartbeat(opts: WorkerOptions, utils: WorkerUtils, lockIds: () => readonly string[]): { beat: () => Promise<void>; stop: () => void } {
  const { pool, log, processId } = opts;
  const judgement = ageJudgement(opts.deadAfterMs);
  const beat = async () => {
    const startedAt = performance.now();
    try {
      await recordHeartbeat(pool, { processId, hostname: os.hostname(), pid: process.pid, stamp: thisProcessStamp(), workerIds: [...lockIds()] });
    } catch (e) {
      judgement.failed();
      throw e;
    }
    const { cutOff, byAge } = judgement.recorded(startedAt);
    if (cutOff) {
      log.info(
        { waitMs: opts.deadAfterMs },
        'this worker was cut off from the database: other workers are judged by the age of their heartbeats again once they have had time to beat',
      );
    }
    await reapDeadWorkers(pool, utils, opts.deadAfterMs, log, processId, { byAge });
  };
  // While the database is away every beat fails: say so once, and once more when it is back.
  let beatFailing = false;
  const timer = setInterval(() => {
    beat().then(
      () => {
        if (beatFailing) log.info('worker heartbeat recorded again');
        beatFailing = false;
      },
      (e: unknown) => {
        if (!beatFailing) log.warn({ err: (e as Error).message }, 'worker heartbeat failed; retrying on every beat');
        beatFailing = true;
      },
    );
  }, beatIntervalMs(opts.deadAfterMs));
  timer.unref();
  return { beat, stop: () => clearInterval(timer) };
}

/**
 * Graphile Worker's runner ends by itself when its pool shuts down after an error it cannot
 * recover from, typically a job that could be neither completed nor failed because the
 * database went away. This process must not stay up without a worker: the runner is started
 * again, with a doubling wait (bounded by RESTART_BACKOFF), until it starts, i.e. until the
 * database answers again. Its pool had released its workers before its promise settled, so the
 * jobs still locked under its ids are unlocked at once, to be picked up again (a step that was
 * still finishing holds its run's advisory lock: the advance picked up again waits for it or is
 * retried, never runs beside it).
 */
function superviseRunner(
  opts: WorkerOptions,
  logger: GraphileLogger,
  utils: WorkerUtils,
  first: LaunchedRunner,
  beat: () => Promise<void>,
  signal: AbortSignal,
): Supervision<LaunchedRunner> {
  const { log } = opts;
  let gone: LaunchedRunner = first;
  return supervise<LaunchedRunner>({
    first,
    what: 'worker',
    backoff: RESTART_BACKOFF,
    signal,
    log,
    ended: async (current) => {
      gone = current;
      // Graphile has logged why; the reason is in stopReason().
      if ((await current.ended) === 'abandoned' && !signal.aborted) {
        log.warn(
          { reason: current.stopReason(), afterMs: ABANDON_AFTER_MS },
          "Graphile Worker's pool did not finish shutting down after a fatal error; abandoning it",
        );
      }
      return current.stopReason();
    },
    restart: () => launchRunner(opts, logger),
    whyFailed: (e) => `could not start: ${(e as Error).message}`,
    discard: async (next) => {
      await next.runner.stop().catch(() => {});
    },
    restarted: async () => {
      const { lockIds } = gone;
      await utils.forceUnlockWorkers([...lockIds]).then(
        () => log.info({ workers: lockIds }, 'unlocked the jobs of the stopped runner'),
        // The reaper unlocks them as orphans once no heartbeat names these ids.
        (e: unknown) => log.warn({ err: (e as Error).message }, 'could not unlock the jobs of the stopped runner yet'),
      );
      await beat().catch(() => {});
    },
  });
}

/**
 * Unlocks the jobs of one worker known to be gone (its thread exited, so nothing of it runs any
 * more) and deletes its heartbeat. Jobs it locked before its first beat named its ids are left to
 * reapDeadWorkers, which unlocks them as orphans.
 */
async function releaseGoneWorker(pool: pg.Pool, utils: WorkerUtils, processId: string, log: Logger): Promise<void> {
  const ids = await takeHeartbeat(pool, processId);
  if (ids.length > 0) {
    await utils.forceUnlockWorkers(ids);
    log.info({ workers: ids, replaces: processId }, 'unlocked the jobs of the worker this one replaces');
  }
}

/**
 * Unlocks the jobs of workers that stopped beating, and of processes on this machine that are
 * certainly gone though their heartbeat is still fresh (no process has their pid any more, or it
 * belongs to a later process: src/common/process-stamp.ts), so a run interrupted by a crash
 * resumes as soon as a process on the same machine is up again, not WORKER_DEAD_AFTER_MS later.
 * Safe to run from every process at once. `self`: this process's id (its own heartbeat is never
 * judged). `byAge: false` reaps only the processes of this machine known to be gone: no stale
 * heartbeat and no orphaned lock (see ageJudgement).
 */
export function reapDeadWorkers(
  pool: pg.Pool,
  utils: WorkerUtils,
  deadAfterMs: number,
  log: Logger,
  self = '',
  opts: { byAge?: boolean } = {},
): Promise<string[]> {
  const byAge = opts.byAge ?? true;
  return withTransaction(pool, async (client) => {
    const here = await heartbeatsOnHost(client, os.hostname(), self);
    const gone = here.filter((r) => isGoneHere({ hostname: os.hostname(), pid: r.pid, stamp: r.stamp })).map((r) => r.process_id);
    const dead = byAge || gone.length > 0 ? await lockDeadHeartbeats(client, byAge ? deadAfterMs : null, gone) : [];
    const orphans = byAge ? await orphanedLockIds(client, deadAfterMs) : [];
    const ids = [...new Set([...dead.flatMap((r) => r.worker_ids), ...orphans])];
    if (ids.length > 0) {
      await utils.forceUnlockWorkers(ids);
      await notifyJobsAvailable(client, ids.length);
      log.warn({ workers: ids, processes: dead.map((r) => r.process_id), goneHere: gone }, 'unlocked the jobs of dead workers');
    }
    if (dead.length > 0) {
      await deleteHeartbeats(
        client,
        dead.map((r) => r.process_id),
      );
    }
    return ids;
  });
}
