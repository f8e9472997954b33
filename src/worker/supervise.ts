/**
 * Keeps one thing running: when it stops by itself, a successor is started, with a doubling wait
 * (bounded by `backoff`) before each try, until one starts. Graphile Worker's runner
 * (src/worker/worker.ts) and the worker thread (src/worker/thread-host.ts) are supervised so.
 *
 * The count of waits carries over from one stop to the next, unless what ran had run well for a
 * while (longer than the longest wait): something that dies at once on every start is restarted
 * ever more slowly, not in a tight loop. Meanwhile `whyDown()` says what happened, for /readyz.
 * Aborting `signal` ends supervision: a wait is cut short (shutdown does not wait out a backoff of
 * up to ten seconds), and a successor that started meanwhile is handed to `discard`.
 */
import { retryWithBackoff, type Backoff } from '../common/backoff.ts';
import type { Logger } from '../common/log.ts';

export interface SuperviseOptions<T> {
  /** What runs now; the caller started it (a failure to start the first one is the caller's to report). */
  first: T;
  /** Settles, with the reason it stopped, once `running` has stopped. */
  ended: (running: T) => Promise<string>;
  /** Starts a successor of `gone`; rejects if it could not start. */
  restart: (gone: T) => Promise<T>;
  /** The reason a failed restart gives for the next attempt. */
  whyFailed: (e: unknown) => string;
  /** Stops a successor that started while supervision was being stopped. */
  discard: (t: T) => Promise<void>;
  /** After `current()` became the successor (and `restarted` was logged). */
  restarted?: (t: T) => Promise<void>;
  /** Fields of the "restarted" log line beside the attempt. */
  describe?: (t: T) => Record<string, unknown>;
  backoff: Backoff;
  signal: AbortSignal;
  log: Logger;
  /** Names it in log lines: 'worker', 'worker thread'. */
  what: string;
}

export interface Supervision<T> {
  /** What runs now; undefined while a successor is being started. */
  current(): T | undefined;
  /** While a successor is being started: why, and which attempt. */
  whyDown(): string | undefined;
  /** Settles once supervision has ended (after `signal` aborted). */
  readonly done: Promise<void>;
}

export function supervise<T>(o: SuperviseOptions<T>): Supervision<T> {
  const { log, what, signal } = o;
  let current: T | undefined = o.first;
  let whyDown: string | undefined;

  const loop = async () => {
    let failures = 0;
    while (current !== undefined) {
      const gone: T = current;
      const startedAt = Date.now();
      let reason = await o.ended(gone);
      if (signal.aborted) return;
      current = undefined;
      if (Date.now() - startedAt > o.backoff.maxMs) failures = 0; // it ran well for a while
      const started = await retryWithBackoff({
        attempt: () => o.restart(gone),
        backoff: o.backoff,
        waitFirst: true,
        waitsBefore: failures,
        signal,
        beforeWait: ({ attempt, delayMs, waits }) => {
          failures = waits;
          whyDown = `worker stopped (${reason}); restarting it (attempt ${failures})`;
          const fields = { reason, attempt: failures, retryInMs: delayMs };
          if (attempt === 1) log.error(fields, `the ${what} stopped unexpectedly; restarting it`);
          else log.warn(fields, `the ${what} could not be restarted yet; retrying`);
        },
        onError: (e) => {
          reason = o.whyFailed(e);
        },
      });
      if (!started) return; // stopping
      if (signal.aborted) {
        await o.discard(started.value);
        return;
      }
      current = started.value;
      whyDown = undefined;
      log.info({ attempt: failures, ...o.describe?.(started.value) }, `${what} restarted`);
      await o.restarted?.(started.value);
    }
  };
  const done = loop().catch((e: unknown) => log.error({ err: e }, `${what} supervision failed`));

  return { current: () => current, whyDown: () => whyDown, done };
}
