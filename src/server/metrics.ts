/**
 * `GET /metrics` (Prometheus text, prom-client): docs/observability.md#metrics lists every series.
 *
 * A scrape is made of
 * - this thread's instruments (src/telemetry/metrics-registry.ts: run and step durations,
 *   time-to-decision, queue and outbox lag, chat API errors, model tokens and cost, pools);
 * - the worker thread's, under `tollgate start` (steps run there): asked for over its port with a
 *   short timeout, so a busy or dead thread never hangs a scrape, and merged with prom-client's
 *   `AggregatorRegistry.aggregate` (counters and histograms summed per label set);
 * - what the database knows: runs by workflow and status, approvals pending, `tollgate_up`;
 * - the process' own figures (prom-client's default metrics, `process_uptime_seconds`), once.
 *
 * It must stay cheap however many runs the database holds, so it never reads tollgate.runs: the
 * counts by status are kept as runs change, by a trigger (migration 000019_run_status_counts), and
 * a scrape sums their few hundred rows. Approvals pending are counted through the partial index
 * of pending approvals (`approvals_pending_idx`): only live approvals are in it. The reads are in
 * src/db/queries/metrics.ts.
 */
import type pg from 'pg';
import { AggregatorRegistry, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { instrumentsAsJson, type MetricsJson } from '../telemetry/metrics-registry.ts';
import { countPendingApprovals, readRunCounts } from '../db/queries/metrics.ts';
import { trackPool } from '../telemetry/metrics.ts';
import type { Handler } from '../common/http.ts';

export interface MetricsOptions {
  /**
   * The worker thread's instruments, when the worker runs in a thread of this process; resolves
   * undefined when the thread did not answer in time.
   */
  fromWorker?: () => Promise<MetricsJson | undefined> | undefined;
}

let processMetrics: Registry | undefined;
/** One per process: prom-client's default metrics (CPU, memory, event loop, GC …) and the uptime. */
function processRegistry(): Registry {
  if (processMetrics) return processMetrics;
  const r = new Registry();
  collectDefaultMetrics({ register: r });
  new Gauge({
    name: 'process_uptime_seconds',
    help: 'Seconds since the process started.',
    registers: [r],
    collect() {
      this.set(Math.round(process.uptime() * 10) / 10);
    },
  });
  processMetrics = r;
  return r;
}

/** The database's figures, as of this scrape, in a registry of their own. */
async function databaseMetrics(pool: pg.Pool): Promise<MetricsJson> {
  const r = new Registry();
  const runs = new Gauge({ name: 'tollgate_runs', help: 'Runs by workflow and status.', labelNames: ['workflow', 'status'] as const, registers: [r] });
  const pending = new Gauge({ name: 'tollgate_approvals_pending', help: 'Approvals waiting for a decision.', registers: [r] });
  const up = new Gauge({ name: 'tollgate_up', help: 'Whether the database answered this scrape.', registers: [r] });
  try {
    const [counts, approvals] = await Promise.all([readRunCounts(pool), countPendingApprovals(pool)]);
    for (const c of counts) runs.set({ workflow: c.workflow, status: c.status }, c.n);
    pending.set(approvals);
    up.set(1);
  } catch {
    runs.reset();
    pending.reset();
    up.set(0);
  }
  return await r.getMetricsAsJSON();
}

/** Whether the worker thread answered (so a missing series is told from a zero one). */
async function workerAnswered(answered: boolean): Promise<MetricsJson> {
  const r = new Registry();
  new Gauge({
    name: 'tollgate_worker_thread_metrics_up',
    help: 'Whether the worker thread answered this scrape with its metrics (its series are missing when not).',
    registers: [r],
  }).set(answered ? 1 : 0);
  return await r.getMetricsAsJSON();
}

export function metricsHandler(pool: pg.Pool, opts: MetricsOptions = {}): Handler {
  trackPool('tollgate', pool);
  return async (_req, res) => {
    const [own, db, worker] = await Promise.all([instrumentsAsJson(), databaseMetrics(pool), opts.fromWorker?.()]);
    const sources = [own, db];
    if (opts.fromWorker) sources.push(await workerAnswered(worker !== undefined), ...(worker ? [worker] : []));
    const merged = AggregatorRegistry.aggregate(sources);
    const text = `${await merged.metrics()}\n${await processRegistry().metrics()}`;
    res.writeHead(200, { 'content-type': merged.contentType });
    res.end(text);
  };
}
