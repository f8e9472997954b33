/**
 * A signal of one's own that aborts when a longer-lived one does (`followAbort`), holding a single
 * listener on it until released.
 *
 * Graphile Worker 0.17 hands every job the same `helpers.abortSignal`, which lives as long as the
 * worker pool: a listener added to it and never removed stays for the life of the worker (and Node
 * warns "MaxListenersExceededWarning … abort listeners added to [AbortSignal]" past ten). An
 * advance therefore follows that signal with one listener, released when the advance ends, and
 * everything inside the advance listens to its own signal; what it leaves behind goes with it.
 */

export interface FollowedSignal {
  /** Aborts, with the same reason, when the followed signal does (at once if it already has). */
  readonly signal: AbortSignal;
  /** Removes the listener from the followed signal. Call it once the work is over; idempotent. */
  release(): void;
}

export function followAbort(parent: AbortSignal | undefined): FollowedSignal {
  const ac = new AbortController();
  if (!parent) return { signal: ac.signal, release: () => {} };
  if (parent.aborted) {
    ac.abort(parent.reason);
    return { signal: ac.signal, release: () => {} };
  }
  const onAbort = () => ac.abort(parent.reason);
  parent.addEventListener('abort', onAbort, { once: true });
  return { signal: ac.signal, release: () => parent.removeEventListener('abort', onAbort) };
}
