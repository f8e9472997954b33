/**
 * The worker: Graphile Worker running Tollgate's tasks (`jobs/`) on the shared pool, plus the
 * heartbeat that makes crash recovery fast.
 *
 * Graphile Worker leaves a job locked by a dead worker for four hours. Each worker process
 * therefore records a heartbeat (its Graphile worker ids) in `tollgate.worker_heartbeats`; every
 * live process, on each beat, unlocks the jobs of processes whose heartbeat is older than
 * `WORKER_DEAD_AFTER_MS` (`forceUnlockWorkers`), so an interrupted run resumes within seconds of
 * any worker being alive. Jobs locked by a worker id no live heartbeat names (a process that died
 * before its first beat) are unlocked the same way once their lock is that old.
 */
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { Logger as GraphileLogger, makeWorkerUtils, run, type Runner, type TaskList, type WorkerEvents, type WorkerUtils } from 'graphile-worker';
import { withTransaction } from './db/transaction.ts';
import type { Logger } from './log.ts';

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
}

export function newProcessId(): string {
  return `${os.hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

export interface WorkerHandle {
  readonly processId: string;
  /** False once stopped or if Graphile Worker's runner ended by itself. */
  isRunning(): boolean;
  stop(): Promise<void>;
  /** Runs one heartbeat-and-reap cycle now (tests and start-up). */
  beat(): Promise<void>;
}

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

export async function startWorker(opts: WorkerOptions): Promise<WorkerHandle> {
  const { pool, log } = opts;
  const { processId } = opts;
  const workerIds = new Set<string>();
  const events: WorkerEvents = new EventEmitter() as WorkerEvents;
  events.on('worker:create', ({ worker }) => {
    workerIds.add(worker.workerId);
  });

  const logger = graphileLogger(log);
  const utils: WorkerUtils = await makeWorkerUtils({ pgPool: pool, logger });
  await pool.query(
    `INSERT INTO tollgate.worker_heartbeats (process_id, hostname, pid) VALUES ($1, $2, $3)`,
    [processId, os.hostname(), process.pid],
  );

  const beat = async () => {
    // An upsert: a process taken for dead while it was only stalled (its row deleted by a reaper)
    // must be seen alive again, or its long jobs would keep being unlocked under it.
    await pool.query(
      `INSERT INTO tollgate.worker_heartbeats (process_id, hostname, pid, worker_ids) VALUES ($1, $2, $3, $4)
       ON CONFLICT (process_id) DO UPDATE SET beat_at = now(), worker_ids = EXCLUDED.worker_ids`,
      [processId, os.hostname(), process.pid, [...workerIds]],
    );
    await reapDeadWorkers(pool, utils, opts.deadAfterMs, log);
  };

  const runner: Runner = await run({
    pgPool: pool,
    taskList: opts.tasks,
    concurrency: opts.concurrency,
    pollInterval: opts.pollIntervalMs,
    noHandleSignals: true,
    // An explicit (possibly empty) crontab, so no `crontab` file in the working directory is read.
    crontab: opts.crontab ?? '',
    logger,
    events,
  });
  let running = true;
  runner.promise.then(
    () => { running = false; },
    (e: unknown) => {
      running = false;
      log.error({ err: e }, 'the worker stopped unexpectedly');
    },
  );
  await beat().catch((e: unknown) => log.warn({ err: e }, 'first worker heartbeat failed'));
  const timer = setInterval(() => {
    beat().catch((e: unknown) => log.warn({ err: (e as Error).message }, 'worker heartbeat failed; retrying on the next beat'));
  }, Math.max(250, Math.floor(opts.deadAfterMs / 3)));
  timer.unref();
  log.info({ processId, concurrency: opts.concurrency }, 'worker started');

  let stopping: Promise<void> | undefined;
  return {
    processId,
    isRunning: () => running,
    beat,
    stop: () =>
      (stopping ??= (async () => {
        clearInterval(timer);
        // Graceful: stop taking jobs, let running ones finish (steps past the abort timeout see
        // their signal aborted and the run is suspended, to be resumed by another worker).
        await runner.stop().catch((e: unknown) => log.warn({ err: e }, 'worker stop'));
        running = false;
        await pool.query('DELETE FROM tollgate.worker_heartbeats WHERE process_id = $1', [processId]).catch(() => {});
        await utils.release();
        log.info({ processId }, 'worker stopped');
      })()),
  };
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
