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

/**
 * Data-modifying CTEs that add one job of the task named by the parameter `task` (e.g. `$7`) per
 * row of the CTE `source` (columns `payload json`, `job_key text`, `max_attempts int`), for keys
 * that are new (a run's first advance): the CTE `name` yields one row, `n`, the jobs added.
 *
 * Graphile Worker's `add_job` does this in a PL/pgSQL function of five statements (ensure the task
 * and queue rows, clear the keys of locked jobs, notify, insert with `ON CONFLICT (key)`), the
 * largest share of a run's PostgreSQL time (bench/statements.ts). For a key no job can hold yet
 * only the insert and the notification are needed, written here as `add_jobs` writes them (its
 * column defaults: no queue, priority 0, run now, no flags); graphile-worker is pinned to 0.17,
 * whose `_private_jobs` this is (test/db-jobs.test.ts runs a job added this way). Should the task
 * have no row yet (a database no job of it was ever added to), `add_jobs` adds them instead: the
 * two branches read the same snapshot, so exactly one of them writes. Workers in other processes
 * and threads wait on the notification, so it is kept: one per statement, not one per job.
 * `name` is MATERIALIZED so that the statement must read it: inlined, a join that uses none of its
 * columns would drop the expression, and with it the first jobs and the notification.
 */
export function newKeyedJobs(name: string, task: string, source: string): string {
  return `${name}_direct AS (
       INSERT INTO graphile_worker._private_jobs (task_id, payload, max_attempts, key)
       SELECT t.id, s.payload, s.max_attempts, s.job_key FROM ${source} s
       JOIN graphile_worker._private_tasks t ON t.identifier = ${task}::text
       RETURNING id),
     ${name}_first AS (
       SELECT count(*) AS n FROM graphile_worker.add_jobs(
         (SELECT array_agg(ROW(${task}::text, s.payload, NULL, NULL, s.max_attempts, s.job_key, NULL, NULL)::graphile_worker.job_spec) FROM ${source} s))
       WHERE NOT EXISTS (SELECT 1 FROM graphile_worker._private_tasks t WHERE t.identifier = ${task}::text)),
     ${name}_notify AS (
       SELECT pg_notify('jobs:insert', json_build_object('count', count(*))::text) FROM ${name}_direct HAVING count(*) > 0),
     ${name} AS MATERIALIZED (
       SELECT (SELECT count(*) FROM ${name}_direct) + (SELECT coalesce(sum(n), 0) FROM ${name}_first) + 0 * (SELECT count(*) FROM ${name}_notify) AS n)`;
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
