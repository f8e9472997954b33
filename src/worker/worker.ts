/**
 * The worker: Graphile Worker running Tollgate's tasks (`jobs/`) on the shared pool, plus the
 * heartbeat that makes crash recovery fast, and the supervision that keeps it running through a
 * database outage.
 *
 * Graphile Worker leaves a job locked by a dead worker for four hours. Each worker process
 * therefore records a heartbeat in `tollgate.worker_heartbeats`, naming the ids its runner locks
 * jobs under (Graphile Worker 0.17 locks under its pool id, `pool-…`); every live process, on each
 * beat, unlocks the jobs of processes whose heartbeat is older than `WORKER_DEAD_AFTER_MS`
 * (`forceUnlockWorkers`), so an interrupted run resumes within seconds of any worker being alive.
 * Jobs locked by an id no live heartbeat names (a process that died before its first beat) are
 * unlocked the same way once their lock is that old. A job locked by a live process is never
 * unlocked, however long its step runs.
 *
 * When the database goes away, nothing here ends the process: failed beats are retried, and a
 * runner that Graphile Worker shut down (a job it could neither complete nor fail) is started
 * again with a bounded backoff once the database answers; /readyz reports both meanwhile.
 */
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { Logger as GraphileLogger, makeWorkerUtils, run, type Runner, type TaskList, type WorkerEvents, type WorkerUtils } from 'graphile-worker';
import { withTransaction } from '../db/transaction.ts';
import type { Logger } from '../common/log.ts';
import { interruptiblePause } from './interruptible-pause.ts';
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
  /** Runs one heartbeat-and-reap cycle now (tests and start-up). */
  beat(): Promise<void>;
  /** A worker in a thread of its own: its instruments for this thread's /metrics (src/telemetry/metrics-thread.ts). */
  metrics?(): Promise<MetricsJson | undefined>;
}

/** First and longest wait before restarting a runner that died (doubling in between). */
export const RESTART_BACKOFF = { firstMs: 1000, maxMs: 10_000 } as const;

export function graphileLogger(log: Logger): GraphileLogger {
  return new GraphileLogger((scope) => (level, message, meta) => {
    const fields = { ...scope, ...(meta ?? {}) };
    const l = log.child({ component: 'graphile-worker' });
    if (level === 'error') l.error(fields, message);
    else if (level === 'warning') l.warn(fields, message);
    else if (level === 'info') l.debug(fields, message); // Graphile's info lines are per-job chatter
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
  events.on('pool:create', ({ workerPool }) => void lockIds.push(workerPool.id));
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
      },
    },
  });
  const ended = Promise.race([runner.promise.then(() => 'ended' as const, () => 'ended' as const), abandoned]);
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
  await pool.query(
    `INSERT INTO tollgate.worker_heartbeats (process_id, hostname, pid) VALUES ($1, $2, $3)`,
    [processId, os.hostname(), process.pid],
  );

  let current: LaunchedRunner | undefined;
  let whyNotRunning: string | undefined;
  let stopping = false;

  const beat = async () => {
    // An upsert: a process taken for dead while it was only stalled (its row deleted by a reaper)
    // must be seen alive again, or its long jobs would keep being unlocked under it.
    await pool.query(
      `INSERT INTO tollgate.worker_heartbeats (process_id, hostname, pid, worker_ids) VALUES ($1, $2, $3, $4)
       ON CONFLICT (process_id) DO UPDATE SET beat_at = now(), worker_ids = EXCLUDED.worker_ids`,
      [processId, os.hostname(), process.pid, [...(current?.lockIds ?? [])]],
    );
    await reapDeadWorkers(pool, utils, opts.deadAfterMs, log);
  };

  try {
    current = await launchRunner(opts, logger);
  } catch (e) {
    await Promise.resolve(utils.release()).catch(() => {});
    throw e;
  }
  await beat().catch((e: unknown) => log.warn({ err: e }, 'first worker heartbeat failed'));

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
  }, Math.max(250, Math.floor(opts.deadAfterMs / 3)));
  timer.unref();

  const { pause, wake } = interruptiblePause();

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
  const supervise = async () => {
    let failures = 0;
    while (current) {
      const { lockIds, stopReason, ended } = current;
      const startedAt = Date.now();
      // Graphile has logged why; the reason is in stopReason().
      if ((await ended) === 'abandoned' && !stopping) {
        log.warn({ reason: stopReason(), afterMs: ABANDON_AFTER_MS }, "Graphile Worker's pool did not finish shutting down after a fatal error; abandoning it");
      }
      if (stopping) return;
      current = undefined;
      if (Date.now() - startedAt > RESTART_BACKOFF.maxMs) failures = 0; // it ran well for a while
      let reason = stopReason();
      let next: LaunchedRunner | undefined;
      for (let tries = 0; !next; tries++) {
        const delay = Math.min(RESTART_BACKOFF.maxMs, RESTART_BACKOFF.firstMs * 2 ** failures);
        failures += 1;
        whyNotRunning = `worker stopped (${reason}); restarting it (attempt ${failures})`;
        const fields = { reason, attempt: failures, retryInMs: delay };
        if (tries === 0) log.error(fields, 'the worker stopped unexpectedly; restarting it');
        else log.warn(fields, 'the worker could not be restarted yet; retrying');
        await pause(delay);
        if (stopping) return;
        try {
          next = await launchRunner(opts, logger);
        } catch (e) {
          reason = `could not start: ${(e as Error).message}`;
        }
      }
      if (stopping) {
        await next.runner.stop().catch(() => {});
        return;
      }
      current = next;
      whyNotRunning = undefined;
      log.info({ attempt: failures }, 'worker restarted');
      await utils.forceUnlockWorkers([...lockIds]).then(
        () => log.info({ workers: lockIds }, 'unlocked the jobs of the stopped runner'),
        // The reaper unlocks them as orphans once no heartbeat names these ids.
        (e: unknown) => log.warn({ err: (e as Error).message }, 'could not unlock the jobs of the stopped runner yet'),
      );
      await beat().catch(() => {});
    }
  };
  const supervising = supervise().catch((e: unknown) => log.error({ err: e }, 'worker supervision failed'));
  log.info({ processId, concurrency: opts.concurrency }, 'worker started');

  let stopped: Promise<void> | undefined;
  return {
    processId,
    isRunning: () => !stopping && current !== undefined,
    whyNotRunning: () => (stopping ? 'worker stopped' : current ? undefined : (whyNotRunning ?? 'worker stopped')),
    beat,
    stop: () =>
      (stopped ??= (async () => {
        stopping = true;
        clearInterval(timer);
        wake();
        // Graceful: stop taking jobs, let running ones finish (steps past the abort timeout see
        // their signal aborted and the run is suspended, to be resumed by another worker).
        await current?.runner.stop().catch((e: unknown) => log.warn({ err: e }, 'worker stop'));
        await supervising;
        await pool.query('DELETE FROM tollgate.worker_heartbeats WHERE process_id = $1', [processId]).catch(() => {});
        await Promise.resolve(utils.release()).catch(() => {});
        log.info({ processId }, 'worker stopped');
      })()),
  };
}

/**
 * Unlocks the jobs of one worker known to be gone (its thread exited, so nothing of it runs any
 * more) and deletes its heartbeat. Jobs it locked before its first beat named its ids are left to
 * reapDeadWorkers, which unlocks them as orphans.
 */
async function releaseGoneWorker(pool: pg.Pool, utils: WorkerUtils, processId: string, log: Logger): Promise<void> {
  const { rows } = await pool.query<{ worker_ids: string[] }>('DELETE FROM tollgate.worker_heartbeats WHERE process_id = $1 RETURNING worker_ids', [processId]);
  const ids = rows[0]?.worker_ids ?? [];
  if (ids.length > 0) {
    await utils.forceUnlockWorkers(ids);
    log.info({ workers: ids, replaces: processId }, 'unlocked the jobs of the worker this one replaces');
  }
}

/** Unlocks the jobs of workers that stopped beating. Safe to run from every process at once. */
export function reapDeadWorkers(pool: pg.Pool, utils: WorkerUtils, deadAfterMs: number, log: Logger): Promise<string[]> {
  return withTransaction(pool, async (client) => {
    const dead = await client.query<{ process_id: string; worker_ids: string[] }>(
      `SELECT process_id, worker_ids FROM tollgate.worker_heartbeats
       WHERE beat_at < now() - make_interval(secs => $1::float / 1000) FOR UPDATE SKIP LOCKED`,
      [deadAfterMs],
    );
    const orphans = await client.query<{ locked_by: string }>(
      `SELECT DISTINCT locked_by FROM graphile_worker.jobs
       WHERE locked_by IS NOT NULL AND locked_at < now() - make_interval(secs => $1::float / 1000)
         AND locked_by NOT IN (SELECT unnest(worker_ids) FROM tollgate.worker_heartbeats WHERE beat_at >= now() - make_interval(secs => $1::float / 1000))`,
      [deadAfterMs],
    );
    const ids = [...new Set([...dead.rows.flatMap((r) => r.worker_ids), ...orphans.rows.map((r) => r.locked_by)])];
    if (ids.length > 0) {
      await utils.forceUnlockWorkers(ids);
      log.warn({ workers: ids, processes: dead.rows.map((r) => r.process_id) }, 'unlocked the jobs of dead workers');
    }
    if (dead.rows.length > 0) {
      await client.query('DELETE FROM tollgate.worker_heartbeats WHERE process_id = ANY($1)', [dead.rows.map((r) => r.process_id)]);
    }
    return ids;
  });
}
