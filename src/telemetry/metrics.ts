/**
 * What the runtime, approvals, the outbox, the worker and the model layer report to `/metrics`,
 * as plain function calls. The instruments themselves (prom-client histograms and counters) are
 * in ./metrics-registry.ts, which a process that serves or works loads and installs here
 * (`installMetrics`); until then every call here does nothing.
 *
 * Why the split: these functions are called from modules every CLI command imports
 * (src/runtime/executor.ts, src/approvals/decide.ts …), and loading prom-client costs a
 * one-shot command a few hundred milliseconds for numbers nobody scrapes (ARCHITECTURE: "a static
 * import … costs every command").
 *
 * Each thread has its own module instances, so its own instruments: the worker thread answers
 * the main thread's scrape with its registry (src/worker/thread-host.ts).
 */
import type pg from 'pg';
import type { ModelCallRecord } from '../model/types.ts';

/** What the instruments do with each report; see ./metrics-registry.ts. */
export interface MetricsSink {
  runEnded(workflow: string, status: string, seconds: number): void;
  stepAttempt(workflow: string, kind: string, outcome: 'succeeded' | 'failed', seconds: number): void;
  approvalDecided(workflow: string, decision: string, seconds: number): void;
  jobStarted(task: string, lagSeconds: number): void;
  messageDelivered(platform: string, kind: string, lagSeconds: number): void;
  chatApiError(platform: string, code: string): void;
  modelCall(record: ModelCallRecord): void;
}

let sink: MetricsSink | undefined;

/** Called once by ./metrics-registry.ts when it loads. */
export function installMetrics(s: MetricsSink): void {
  sink = s;
}

const secondsSince = (at: Date | number): number => Math.max(0, (Date.now() - (typeof at === 'number' ? at : at.getTime())) / 1000);

/** A run ended with `status` (succeeded, failed, cancelled …): its duration from creation. */
export function observeRunEnd(run: { workflow: string; created_at: Date }, status: string): void {
  sink?.runEnded(run.workflow, status, secondsSince(run.created_at));
}

/**
 * Times one attempt of a step's body (`kind`: step, tool, model …) and passes its result through.
 * Without installed instruments it only calls `attempt`.
 */
export function timeStepAttempt<T>(workflow: string, kind: string, attempt: () => Promise<T>): Promise<T> {
  const s = sink;
  if (!s) return attempt();
  const t0 = performance.now();
  return attempt().then(
    (v) => {
      s.stepAttempt(workflow, kind, 'succeeded', (performance.now() - t0) / 1000);
      return v;
    },
    (e: unknown) => {
      s.stepAttempt(workflow, kind, 'failed', (performance.now() - t0) / 1000);
      throw e;
    },
  );
}

/** An approval was resolved by people (approved or rejected): the time since it was opened. */
export function observeApprovalDecision(workflow: string | undefined, decision: string, openedAt: Date): void {
  sink?.approvalDecided(workflow ?? 'unknown', decision, secondsSince(openedAt));
}

/** A Graphile job started: how long after it was ready (its `run_at`). */
export function observeQueueLag(task: string, readyAt: Date | string): void {
  sink?.jobStarted(task, secondsSince(new Date(readyAt)));
}

/** A message of the outbox was posted for the first time: how long after its row was written. */
export function observeOutboxLag(platform: string, kind: string, enqueuedAt: Date | undefined): void {
  if (enqueuedAt) sink?.messageDelivered(platform, kind, secondsSince(enqueuedAt));
}

/**
 * A chat platform's API refused or failed a call, as the platform classified it (the outbox's
 * `DeliveryFailure`, src/chat/platform.ts, spelled out: the runtime imports this module and must
 * not import src/chat): a refusal for
 * good by its code (Slack's `channel_not_found` …), a rate limit as `rate_limited`, any other
 * failure worth retrying (network, 5xx) as `transient`.
 */
export function countChatApiError(platform: string, failure: { kind: 'retry'; retryAfterMs?: number } | { kind: 'permanent'; code: string }): void {
  const code = failure.kind === 'permanent' ? failure.code : failure.retryAfterMs !== undefined ? 'rate_limited' : 'transient';
  sink?.chatApiError(platform, code);
}

/** One model call (src/model): its tokens by direction and its cost, by model. */
export function observeModelCall(record: ModelCallRecord): void {
  sink?.modelCall(record);
}

const pools = new Map<string, pg.Pool>();

/**
 * Reports `pool`'s connections (total, idle, waiting) under `name`; the latest pool of a name
 * wins. Kept here, so a pool tracked before the instruments load is reported once they do.
 */
export function trackPool(name: string, pool: pg.Pool): void {
  pools.set(name, pool);
}

export function trackedPools(): ReadonlyMap<string, pg.Pool> {
  return pools;
}
