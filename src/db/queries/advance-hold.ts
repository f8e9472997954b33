/**
 * One hop from a click to the run's next step (src/worker/one-hop.ts): the job that records a
 * decision, a Retry or a Cancel also advances the run, in the same worker turn. The run's keyed
 * advance job (`advance:<runId>`, src/db/queries/jobs.ts `enqueueAdvance`) is still enqueued in
 * the click's transaction, as the crash-safe fallback, and in that same transaction it is locked
 * under the worker's own lock id, exactly as if this worker had fetched it:
 * - no other worker takes it while this one advances the run inline;
 * - if the process dies, the job is unlocked with every other job of the dead worker (the
 *   heartbeat's reaper, src/worker/worker.ts), and any worker then runs it;
 * - a wake-up enqueued meanwhile by another change finds the job locked and adds a new one
 *   (Graphile Worker's 'replace' mode never merges into a locked job), so none is lost.
 * After the inline advance the held job is deleted; when the advance did not run here (the run
 * was busy, the advance failed), it is unlocked for any worker.
 *
 * These statements write Graphile Worker's own columns (`locked_at`, `locked_by`), as its
 * `get_job` does; nothing else of its schema is touched.
 */
import type { Queryable } from '../queryable.ts';

/**
 * Locks the run's pending immediate advance job under `lockedBy` (this worker's Graphile pool id,
 * which its heartbeat names), in the caller's transaction. Returns the job's id, or null when
 * there is none to hold (a worker took it already, or the wake-up went out without a key).
 */
export async function holdAdvanceJob(q: Queryable, runId: string, lockedBy: string): Promise<string | null> {
  const { rows } = await q.query<{ id: string }>(
    `UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = $2
       WHERE key = 'advance:' || $1 AND locked_at IS NULL AND attempts < max_attempts RETURNING id::text AS id`,
    [runId, lockedBy],
  );
  return rows[0]?.id ?? null;
}

/** `holdAdvanceJob` for the run of an approval whose gate a decision just resolved. */
export async function holdApprovalAdvanceJob(q: Queryable, approvalId: string, lockedBy: string): Promise<{ runId: string; jobId: string } | null> {
  const { rows } = await q.query<{ run_id: string; id: string }>(
    `UPDATE graphile_worker._private_jobs j SET locked_at = now(), locked_by = $2 FROM tollgate.approvals a
       WHERE a.id = $1 AND j.key = 'advance:' || a.run_id AND j.locked_at IS NULL AND j.attempts < j.max_attempts
       RETURNING a.run_id, j.id::text AS id`,
    [approvalId, lockedBy],
  );
  const row = rows[0];
  return row ? { runId: row.run_id, jobId: row.id } : null;
}

/** The run was advanced inline: the held job has nothing left to do. */
export async function dropHeldAdvance(q: Queryable, jobId: string, lockedBy: string): Promise<void> {
  await q.query('DELETE FROM graphile_worker._private_jobs WHERE id = $1::bigint AND locked_by = $2', [jobId, lockedBy]);
}

/**
 * The run was not advanced here: the held job goes to any worker now (with the notification
 * Graphile Worker's workers listen for). A held job that a newer wake-up superseded (Graphile
 * cleared its key and used up its attempts, and added the newer one) is deleted instead.
 */
export async function releaseHeldAdvance(q: Queryable, jobId: string, lockedBy: string): Promise<void> {
  await q.query(
    `WITH superseded AS (
       DELETE FROM graphile_worker._private_jobs WHERE id = $1::bigint AND locked_by = $2 AND key IS NULL AND attempts >= max_attempts RETURNING id
     ), released AS (
       UPDATE graphile_worker._private_jobs SET locked_at = NULL, locked_by = NULL
         WHERE id = $1::bigint AND locked_by = $2 AND NOT EXISTS (SELECT 1 FROM superseded) RETURNING id
     )
     SELECT pg_notify('jobs:insert', json_build_object('r', random(), 'count', 1)::text) FROM released`,
    [jobId, lockedBy],
  );
}

/** An advance job held by the worker that carried out a click (`holdAdvanceJob`), to be run inline. */
export interface HeldAdvance {
  runId: string;
  jobId: string;
  lockedBy: string;
}
