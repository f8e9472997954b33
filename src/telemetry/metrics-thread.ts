/**
 * The worker thread's instruments reach the main thread's `/metrics` by asking: on each scrape the
 * main thread posts `{type: 'metrics', id}` over the thread's port and the thread answers with its
 * registry as JSON (prom-client's `getMetricsAsJSON`), which the scrape merges with its own
 * (src/server/metrics.ts). A thread that is busy, restarting or dead must not hang a scrape: an
 * answer that has not come within `timeoutMs` counts as none (its series are missing from that
 * scrape, and `tollgate_worker_thread_metrics_up` is 0).
 */
import type { MetricsJson } from './metrics-registry.ts';

/** The main thread's side: requests in flight, answered by `answer`, given up after a timeout. */
export class ThreadMetricsRequests {
  readonly #waiting = new Map<number, (m: MetricsJson | undefined) => void>();
  #next = 0;

  constructor(readonly timeoutMs = 2000) {}

  /** Asks through `post(id)`; resolves with the thread's metrics, or undefined if none came in time. */
  request(post: ((id: number) => void) | undefined): Promise<MetricsJson | undefined> {
    if (!post) return Promise.resolve(undefined);
    const id = this.#next++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(undefined), this.timeoutMs);
      timer.unref();
      const settle = (m: MetricsJson | undefined) => {
        clearTimeout(timer);
        this.#waiting.delete(id);
        resolve(m);
      };
      this.#waiting.set(id, settle);
      try {
        post(id);
      } catch {
        settle(undefined); // the thread is gone
      }
    });
  }

  answer(id: number, metrics: MetricsJson | undefined): void {
    this.#waiting.get(id)?.(metrics);
  }

  /** The thread exited: nobody will answer. */
  dropAll(): void {
    for (const settle of [...this.#waiting.values()]) settle(undefined);
  }
}

/** The thread's side: its registry as JSON (undefined if it could not be read). */
export async function answerMetricsRequest(): Promise<MetricsJson | undefined> {
  const { instrumentsAsJson } = await import('./metrics-registry.ts');
  return instrumentsAsJson().catch(() => undefined);
}
