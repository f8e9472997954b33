/**
 * Bounded exponential backoff, written once: the wait before the n-th retry, a wait that an abort
 * signal cuts short, and the retry loop itself. Restarting a dead worker runner or worker thread
 * (src/worker/supervise.ts), restarting a dead embedded postmaster (src/db/embedded-supervisor.ts),
 * retrying a model call (src/model/client.ts) and the chat outbox's redelivery
 * (src/chat/deliver/rows.ts) all back off with these.
 *
 * It lives in src/common because every layer that backs off may import it (src/db and src/model
 * sit below src/worker); it knows nothing of what it retries.
 */

/** First and longest wait (ms); the waits double in between. */
export interface Backoff {
  readonly firstMs: number;
  readonly maxMs: number;
}

/** The wait after `n` earlier waits: `firstMs`, doubled `n` times, at most `maxMs`. */
export function backoffDelay(backoff: Backoff, n: number): number {
  return Math.min(backoff.maxMs, backoff.firstMs * 2 ** n);
}

/**
 * Waits `ms`, or less when `signal` aborts first; true when the whole wait passed. `ref: false`
 * lets the process end meanwhile (a supervisor must not keep a finished CLI command alive).
 */
export function pause(ms: number, signal?: AbortSignal, opts: { ref?: boolean } = {}): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    if (opts.ref === false) timer.unref();
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryOptions<T> {
  /** One attempt (`n` counts from 1); a rejection is a failed attempt. */
  attempt: (n: number) => Promise<T>;
  backoff: Backoff;
  /** Wait before the first attempt too (a restart right after a crash would likely fail the same way). */
  waitFirst?: boolean;
  /** Waits already made for the same trouble: the doubling goes on from there. */
  waitsBefore?: number;
  /** Gives up after this many failed attempts (default: never). */
  maxAttempts?: number;
  /** Aborted: no further wait or attempt (a wait in progress is cut short). */
  signal?: AbortSignal;
  /** False: the waits do not keep the process alive. */
  ref?: boolean;
  /** Before each wait: `waits` counts it (and `waitsBefore`). For logging and status. */
  beforeWait?: (w: { attempt: number; delayMs: number; waits: number }) => void;
  /** After each failed attempt. */
  onError?: (e: unknown, attempt: number) => void;
}

/**
 * Runs `attempt` until it succeeds, waiting `backoffDelay` between attempts. Resolves with its
 * value and the waits counted so far, or undefined when the signal aborted or `maxAttempts`
 * attempts failed (the caller knows which from its signal).
 */
export async function retryWithBackoff<T>(o: RetryOptions<T>): Promise<{ value: T; waits: number } | undefined> {
  let waits = o.waitsBefore ?? 0;
  for (let n = 1; ; n++) {
    if (n > 1 || o.waitFirst) {
      const delayMs = backoffDelay(o.backoff, waits);
      waits += 1;
      o.beforeWait?.({ attempt: n, delayMs, waits });
      if (!(await pause(delayMs, o.signal, { ref: o.ref ?? true }))) return undefined;
    }
    if (o.signal?.aborted) return undefined;
    try {
      return { value: await o.attempt(n), waits };
    } catch (e) {
      o.onError?.(e, n);
      if (n >= (o.maxAttempts ?? Infinity)) return undefined;
    }
  }
}
