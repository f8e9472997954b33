/**
 * What a `/metrics` scrape reads from the database (src/server/metrics.ts): runs by workflow and
 * status, and approvals pending. A scrape must stay cheap however many runs the database holds,
 * so neither reads tollgate.runs: the counts by status are kept as runs change, by a trigger
 * (migration 000019_run_status_counts), and a scrape sums their few hundred rows; approvals
 * pending are counted through the partial index of pending approvals (`approvals_pending_idx`).
 */
import type { Queryable } from '../queryable.ts';

/** The SQL a scrape runs (exported for the test that checks it never reads tollgate.runs). */
export const RUN_COUNTS_SQL = `SELECT workflow, status, sum(n)::text AS n FROM tollgate.run_status_counts GROUP BY workflow, status ORDER BY workflow, status`;
export const PENDING_APPROVALS_SQL = `SELECT count(*)::text AS n FROM tollgate.approvals WHERE status = 'pending'`;

export interface RunCount {
  workflow: string;
  status: string;
  n: number;
}

/** Runs by workflow and status (a status a run left counts 0, not missing). */
export async function readRunCounts(q: Queryable): Promise<RunCount[]> {
  const { rows } = await q.query<{ workflow: string; status: string; n: string }>(RUN_COUNTS_SQL);
  return rows.map((c) => ({ workflow: c.workflow, status: c.status, n: Number(c.n) }));
}

export async function countPendingApprovals(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ n: string }>(PENDING_APPROVALS_SQL);
  return Number(rows[0]?.n ?? 0);
}
