/**
 * A wait that can be cut short: supervisors (the worker's runner restarts, the worker thread's
 * restarts) back off with `pause(ms)`, and `stop()` calls `wake()` so shutdown does not wait out
 * a backoff of up to ten seconds.
 */
export interface InterruptiblePause {
  pause(ms: number): Promise<void>;
  /** Ends the current pause now (no-op when none is running). */
  wake(): void;
}

export function interruptiblePause(): InterruptiblePause {
  let wake: () => void = () => {};
  return {
    pause: (ms) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      }),
    wake: () => wake(),
  };
}
