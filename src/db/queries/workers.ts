/**
 * Worker heartbeats (`tollgate.worker_heartbeats`) and the locks Graphile Worker holds for them
 * (`graphile_worker.jobs.locked_by`): what src/worker/worker.ts reads and writes to tell live
 * workers from dead ones. Unlocking the jobs themselves is Graphile Worker's
 * (`forceUnlockWorkers`), not SQL of ours.
 */
import type { Queryable } from '../queryable.ts';

/** A heartbeat that is too old: its process and the ids its runner locked jobs under. */
export interface DeadWorkerRow {
  process_id: string;
  worker_ids: string[];
}

/** Who a heartbeat names: the process, its host and pid, and its stamp (src/common/process-stamp.ts). */
export interface HeartbeatOwner {
  processId: string;
  hostname: string;
  pid: number;
  stamp: string | null;
}

/** A process's first heartbeat, before its runner has named any lock id. */
export async function insertHeartbeat(q: Queryable, w: HeartbeatOwner): Promise<void> {
  await q.query(`INSERT INTO tollgate.worker_heartbeats (process_id, hostname, pid, process_stamp) VALUES ($1, $2, $3, $4)`, [
    w.processId,
    w.hostname,
    w.pid,
    w.stamp,
  ]);
}

/**
 * One beat. An upsert: a process taken for dead while it was only stalled (its row deleted by a
 * reaper) must be seen alive again, or its long jobs would keep being unlocked under it.
 */
export async function recordHeartbeat(q: Queryable, w: HeartbeatOwner & { workerIds: string[] }): Promise<void> {
  await q.query(
    `INSERT INTO tollgate.worker_heartbeats (process_id, hostname, pid, worker_ids, process_stamp) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (process_id) DO UPDATE SET beat_at = now(), worker_ids = EXCLUDED.worker_ids`,
    [w.processId, w.hostname, w.pid, w.workerIds, w.stamp],
  );
}

/** A process stopping: its heartbeat goes. */
export async function deleteHeartbeat(q: Queryable, processId: string): Promise<void> {
  await q.query('DELETE FROM tollgate.worker_heartbeats WHERE process_id = $1', [processId]);
}

/** A process known to be gone: its heartbeat goes, and the ids it locked jobs under are returned. */
export async function takeHeartbeat(q: Queryable, processId: string): Promise<string[]> {
  const { rows } = await q.query<{ worker_ids: string[] }>('DELETE FROM tollgate.worker_heartbeats WHERE process_id = $1 RETURNING worker_ids', [processId]);
  return rows[0]?.worker_ids ?? [];
}

/** The heartbeats of other processes on `hostname`, for the caller to tell which are gone (src/common/process-stamp.ts). */
export async function heartbeatsOnHost(
  q: Queryable,
  hostname: string,
  processId: string,
): Promise<{ process_id: string; pid: number | null; stamp: string | null }[]> {
  const { rows } = await q.query<{ process_id: string; pid: number | null; stamp: string | null }>(
    'SELECT process_id, pid, process_stamp AS stamp FROM tollgate.worker_heartbeats WHERE hostname = $1 AND process_id <> $2',
    [hostname, processId],
  );
  return rows;
}

/**
 * Heartbeats older than `deadAfterMs` (none by age when it is null), and those of `goneIds`
 * (processes known to be gone), locked (skipping those another reaper holds); in a transaction.
 */
export async function lockDeadHeartbeats(q: Queryable, deadAfterMs: number | null, goneIds: readonly string[] = []): Promise<DeadWorkerRow[]> {
  const { rows } = await q.query<DeadWorkerRow>(
    `SELECT process_id, worker_ids FROM tollgate.worker_heartbeats
       WHERE beat_at < now() - make_interval(secs => $1::float / 1000) OR process_id = ANY($2::text[]) FOR UPDATE SKIP LOCKED`,
    [deadAfterMs, goneIds],
  );
  return rows;
}

/**
 * Lock ids that hold jobs locked longer than `deadAfterMs` and that no live heartbeat names: a
 * process that died before its first beat named them.
 */
export async function orphanedLockIds(q: Queryable, deadAfterMs: number): Promise<string[]> {
  const { rows } = await q.query<{ locked_by: string }>(
    `SELECT DISTINCT locked_by FROM graphile_worker.jobs
       WHERE locked_by IS NOT NULL AND locked_at < now() - make_interval(secs => $1::float / 1000)
         AND locked_by NOT IN (SELECT unnest(worker_ids) FROM tollgate.worker_heartbeats WHERE beat_at >= now() - make_interval(secs => $1::float / 1000))`,
    [deadAfterMs],
  );
  return rows.map((r) => r.locked_by);
}

export async function deleteHeartbeats(q: Queryable, processIds: string[]): Promise<void> {
  await q.query('DELETE FROM tollgate.worker_heartbeats WHERE process_id = ANY($1)', [processIds]);
}

/** Wakes the workers listening for new jobs (Graphile Worker's channel): jobs were unlocked, run them now rather than at the next poll. */
export async function notifyJobsAvailable(q: Queryable, count: number): Promise<void> {
  await q.query(`SELECT pg_notify('jobs:insert', json_build_object('r', random(), 'count', $1::int)::text)`, [count]);
}
