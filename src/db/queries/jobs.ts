/**
 * Graphile Worker's own SQL (`graphile_worker.add_job`, `add_jobs`), for jobs added inside the
 * caller's transaction: the job commits with the change that needs it, or not at all. Statements
 * that add a job in the same statement as a change (a data-modifying CTE, e.g. `insertQueuedRun`)
 * use the task names exported here.
 */
import type { Queryable } from '../queryable.ts';
import { prepared } from './prepared.ts';

export const ADVANCE_TASK = 'run-advance';

/**
 * Enqueues the run's advance job in the caller's transaction. Immediate advances share one job
 * key so a burst of wake-ups is one pending job; the timer of a waiting run has its own key, so an
 * immediate wake-up never pushes a timer later or a timer delays an immediate wake-up.
 *
 * Graphile Worker's `add_job` with a key in 'replace' mode returns NULL and adds nothing when a
 * worker locks the pending keyed job between its two statements; that job may already have read
 * the run's state from before this transaction. The wake-up is then added again without a key:
 * a duplicate advance is harmless (the executor serialises and re-reads), a lost one is not.
 */
export async function enqueueAdvance(q: Queryable, runId: string, runAt?: Date): Promise<void> {
  const { rows } = await q.query<{ id: string | null }>(
    prepared(
      'enqueue_advance_v2',
      `SELECT (graphile_worker.add_job($1, json_build_object('runId', $2::text), run_at => $3, job_key => $4, job_key_mode => 'replace', max_attempts => 25)).id AS id`,
      [ADVANCE_TASK, runId, runAt ?? null, runAt ? `wake:${runId}` : `advance:${runId}`],
    ),
  );
  if (rows[0]?.id == null) {
    await q.query(`SELECT graphile_worker.add_job($1, json_build_object('runId', $2::text), run_at => $3, max_attempts => 25)`, [
      ADVANCE_TASK,
      runId,
      runAt ?? null,
    ]);
  }
}

export interface JobOptions {
  runAt?: Date | null;
  /** With a key, a pending job of the same key is replaced (Graphile Worker's 'replace' mode). */
  jobKey?: string | null;
  /** Graphile Worker's default (25) when not given. */
  maxAttempts?: number | null;
}

/**
 * Adds one job of `task` with a JSON `payload`. With a `jobKey`, the same job-key race as
 * `enqueueAdvance` is covered the same way: when `add_job` adds nothing because a worker locked
 * the pending keyed job meanwhile, the job is added again without a key, so it is never lost
 * (a task given a spare run must find nothing left to do). Returns the id of the job added.
 */
export async function addJob(q: Queryable, task: string, payload: unknown, opts: JobOptions = {}): Promise<string> {
  const { rows } = await q.query<{ id: string | null }>(
    `SELECT (graphile_worker.add_job($1, $2::json, run_at => $3, job_key => $4, max_attempts => $5)).id::text AS id`,
    [task, JSON.stringify(payload ?? null), opts.runAt ?? null, opts.jobKey ?? null, opts.maxAttempts ?? null],
  );
  const id = rows[0]?.id;
  if (id != null) return id;
  const again = await q.query<{ id: string }>(`SELECT (graphile_worker.add_job($1, $2::json, run_at => $3, max_attempts => $4)).id::text AS id`, [
    task,
    JSON.stringify(payload ?? null),
    opts.runAt ?? null,
    opts.maxAttempts ?? null,
  ]);
  return (again.rows[0] as { id: string }).id;
}

/** Adds several jobs of `task` in one statement (`add_jobs`), one per payload, without keys. */
export async function addJobs(q: Queryable, task: string, payloads: readonly unknown[], opts: { maxAttempts?: number | null } = {}): Promise<number> {
  if (payloads.length === 0) return 0;
  const { rows } = await q.query<{ n: string }>(
    `SELECT count(*) AS n FROM graphile_worker.add_jobs(
       (SELECT array_agg(ROW($1::text, p, NULL, NULL, $3::int, NULL, NULL, NULL)::graphile_worker.job_spec ORDER BY i)
        FROM json_array_elements($2::json) WITH ORDINALITY AS x(p, i)))`,
    [task, JSON.stringify(payloads), opts.maxAttempts ?? null],
  );
  return Number(rows[0]?.n ?? 0);
}
