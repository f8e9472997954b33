/**
 * `GET /metrics` (Prometheus text): `tollgate_runs{workflow,status}`, `tollgate_up`,
 * `process_uptime_seconds`.
 *
 * A scrape must stay cheap however many runs the database holds, so it never counts the whole
 * runs table:
 * - live statuses (queued, running, waiting, compensating, dead_letter) are counted on every
 *   scrape through the status index (`runs_status_idx`): there are few live runs at any time;
 * - finished statuses (the bulk of the table, growing forever) are counted at most once per
 *   `finishedRefreshMs` (60 s) per process, in the background: a scrape serves the last count
 *   and, if it is older than that, starts a new one without waiting for it. Only the first scrape
 *   of a process waits, so the series exist from the start.
 * No counter is kept in the database: a row updated by every run's transaction would serialise runs.
 */
import type pg from 'pg';
import { TERMINAL_STATUSES } from '../runtime/journal.ts';
import type { Handler } from './http.ts';

export interface MetricsOptions {
  /** How old the finished-run counts may get before a scrape starts a recount. */
  finishedRefreshMs?: number;
  now?: () => number;
}

interface CountRow {
  workflow: string;
  status: string;
  n: string;
}

// Constant lists written into the SQL, so the planner sees them and picks the status index.
const LIVE_STATUSES = ['queued', 'running', 'waiting', 'compensating', 'dead_letter'] as const;
const sqlList = (xs: readonly string[]) => xs.map((s) => `'${s}'`).join(', ');
const LIVE_COUNTS_SQL = `SELECT workflow, status, count(*) AS n FROM tollgate.runs
  WHERE status IN (${sqlList(LIVE_STATUSES)}) GROUP BY 1, 2`;
const FINISHED_COUNTS_SQL = `SELECT workflow, status, count(*) AS n FROM tollgate.runs
  WHERE status IN (${sqlList(TERMINAL_STATUSES)}) GROUP BY 1, 2`;

/** The SQL a scrape runs (exported for the test that checks its plan). */
export const METRICS_SCRAPE_SQL = LIVE_COUNTS_SQL;

export function metricsHandler(pool: pg.Pool, opts: MetricsOptions = {}): Handler {
  const refreshMs = opts.finishedRefreshMs ?? 60_000;
  const now = opts.now ?? Date.now;
  let finished: { at: number; rows: CountRow[] } | undefined;
  let recount: Promise<void> | undefined;

  const countFinished = (): Promise<void> => {
    recount ??= pool
      .query<CountRow>(FINISHED_COUNTS_SQL)
      .then(({ rows }) => {
        finished = { at: now(), rows };
      })
      .finally(() => {
        recount = undefined;
      });
    return recount;
  };

  return async (_req, res) => {
    const lines = ['# HELP tollgate_runs Runs by workflow and status.', '# TYPE tollgate_runs gauge'];
    let up = 1;
    try {
      if (!finished) await countFinished();
      else if (now() - finished.at >= refreshMs) countFinished().catch(() => {}); // the next scrape retries
      const live = await pool.query<CountRow>(LIVE_COUNTS_SQL);
      const rows = [...live.rows, ...(finished?.rows ?? [])].sort((a, b) =>
        a.workflow === b.workflow ? a.status.localeCompare(b.status) : a.workflow.localeCompare(b.workflow),
      );
      for (const r of rows) lines.push(`tollgate_runs{workflow="${r.workflow}",status="${r.status}"} ${r.n}`);
    } catch {
      up = 0;
    }
    lines.push('# HELP tollgate_up Whether the database answered.', '# TYPE tollgate_up gauge', `tollgate_up ${up}`);
    lines.push('# TYPE process_uptime_seconds gauge', `process_uptime_seconds ${process.uptime().toFixed(1)}`);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(`${lines.join('\n')}\n`);
  };
}
