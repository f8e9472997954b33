/**
 * The instruments behind ./metrics.ts, in one prom-client registry per thread. Loading this module
 * installs them (`installMetrics`); serving processes and the worker thread load it, one-shot CLI
 * commands never do.
 *
 * Names and units follow Prometheus' conventions: base units (`_seconds`), counters end in
 * `_total`. Label values are bounded: workflow names, statuses, step kinds, task names, platform
 * names, the platform's classified error codes, model names.
 *
 * Only instruments that this thread observes live here. What the database knows (runs by status,
 * approvals pending) and the process' own figures are added by the scrape (src/server/metrics.ts),
 * once per process, so that merging the worker thread's registry into the main thread's never
 * counts them twice.
 */
import { Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { installMetrics, trackedPools } from './metrics.ts';

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export const instruments = new Registry();

// Runs wait for people and timers: seconds to a week.
const runDuration = new Histogram({
  name: 'tollgate_run_duration_seconds',
  help: 'Time from a run’s creation to its end, waits included, by workflow and final status.',
  labelNames: ['workflow', 'outcome'] as const,
  buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600, 21_600, 86_400, 604_800],
  registers: [instruments],
});

const stepDuration = new Histogram({
  name: 'tollgate_step_duration_seconds',
  help: 'Time one attempt of a step’s body took, by workflow, step kind (step, tool, model) and outcome (succeeded, failed).',
  labelNames: ['workflow', 'kind', 'outcome'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [instruments],
});

const approvalDecision = new Histogram({
  name: 'tollgate_approval_decision_seconds',
  help: 'Time from an approval’s opening to its decision by people, by workflow and decision (approved, rejected).',
  labelNames: ['workflow', 'decision'] as const,
  buckets: [1, 10, 60, 300, 900, 3600, 14_400, 86_400, 259_200, 604_800],
  registers: [instruments],
});

const queueLag = new Histogram({
  name: 'tollgate_queue_lag_seconds',
  help: 'Time from a job being ready (its run_at) to a worker starting it, by task.',
  labelNames: ['task'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [instruments],
});

const outboxLag = new Histogram({
  name: 'tollgate_outbox_lag_seconds',
  help: 'Time from a chat message entering the outbox to its first post on the platform, by platform and message kind (run, approval, reply).',
  labelNames: ['platform', 'kind'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600],
  registers: [instruments],
});

const chatApiErrors = new Counter({
  name: 'tollgate_chat_api_errors_total',
  help: 'Chat platform API calls that failed, by platform and the platform’s error code.',
  labelNames: ['platform', 'code'] as const,
  registers: [instruments],
});

const modelTokens = new Counter({
  name: 'tollgate_model_tokens_total',
  help: 'Model tokens, by model and direction (input, output).',
  labelNames: ['model', 'direction'] as const,
  registers: [instruments],
});

const modelCost = new Counter({
  name: 'tollgate_model_cost_usd_total',
  help: 'Model cost in US dollars from the configured prices, by model.',
  labelNames: ['model'] as const,
  registers: [instruments],
});

/** pg.Pool's own counts, read at each scrape. */
function poolGauge(name: string, help: string, read: (p: { totalCount: number; idleCount: number; waitingCount: number }) => number): void {
  new Gauge({
    name,
    help,
    labelNames: ['pool'] as const,
    registers: [instruments],
    collect() {
      this.reset();
      for (const [pool, p] of trackedPools()) this.set({ pool }, read(p));
    },
  });
}
poolGauge('tollgate_db_pool_connections', 'Open PostgreSQL connections of the pool.', (p) => p.totalCount);
poolGauge('tollgate_db_pool_idle_connections', 'Open PostgreSQL connections of the pool that are idle.', (p) => p.idleCount);
poolGauge('tollgate_db_pool_waiting_requests', 'Queries waiting for a connection of the pool.', (p) => p.waitingCount);

installMetrics({
  runEnded: (workflow, outcome, seconds) => runDuration.observe({ workflow, outcome }, seconds),
  stepAttempt: (workflow, kind, outcome, seconds) => stepDuration.observe({ workflow, kind, outcome }, seconds),
  approvalDecided: (workflow, decision, seconds) => approvalDecision.observe({ workflow, decision }, seconds),
  jobStarted: (task, seconds) => queueLag.observe({ task }, seconds),
  messageDelivered: (platform, kind, seconds) => outboxLag.observe({ platform, kind }, seconds),
  chatApiError: (platform, code) => chatApiErrors.inc({ platform, code }),
  modelCall: (r) => {
    if (r.inputTokens) modelTokens.inc({ model: r.model, direction: 'input' }, r.inputTokens);
    if (r.outputTokens) modelTokens.inc({ model: r.model, direction: 'output' }, r.outputTokens);
    if (r.costUsd) modelCost.inc({ model: r.model }, r.costUsd);
  },
});

/** This thread's instruments, as plain data (what the worker thread sends the main thread). */
export function instrumentsAsJson(): Promise<MetricsJson> {
  return instruments.getMetricsAsJSON();
}
