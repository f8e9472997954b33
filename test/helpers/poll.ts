/**
 * The one way a test waits for something to happen: `poll` runs a check until it yields a value
 * or a deadline passes. Tests never sleep for a fixed time to let something happen; they poll
 * for the condition itself, so a fast machine is not slowed down and a slow one does not fail.
 * (When the behaviour under test is that nothing happens within a window, `holdsFor` checks it
 * through the window and fails as soon as it breaks.)
 */

import { inspect } from 'node:util';

/** A check's answer: `undefined`, `null` or `false` mean "not yet"; anything else is the value. */
export type Pending = undefined | null | false;

export interface PollOptions {
  /** What is awaited, for the failure message: "the run message", "/readyz to report ready". */
  message: string;
  /** How long to wait in all (default 20 s). */
  timeoutMs?: number;
  /** How long to wait between two checks (default 25 ms). */
  intervalMs?: number;
  /**
   * Whether an error thrown by the check counts as "not yet" (default true: the fake or the row
   * may not exist yet; the last error is reported on timeout). False fails at once, for checks
   * whose errors are real failures.
   */
  retryErrors?: boolean;
  /** More context for the failure message, read when the wait fails (e.g. a process's output). */
  detail?: () => string;
}

/** What `poll` throws when its deadline passes (any other error is the check's own). */
export class PollTimeout extends Error {
  override name = 'PollTimeout';
}

/**
 * For a wait whose deadline is not a failure ("wait up to 5 s, then go on"):
 * `await poll(...).catch(undefinedIfTimedOut)` gives `undefined` on timeout and rethrows the rest.
 */
export function undefinedIfTimedOut(e: unknown): undefined {
  if (e instanceof PollTimeout) return undefined;
  throw e;
}

/**
 * Resolves after `ms`: the interval between two checks, or a pace (load spread over time). Never
 * to wait until something has happened: poll for it.
 */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs `check` every `intervalMs` until it yields a value (see `Pending`), and returns that value.
 * Fails after `timeoutMs` with a message naming what was awaited, the last value seen and the last
 * error thrown. The check always runs at least once, even with a zero timeout.
 */
export async function poll<T>(check: () => T | Pending | Promise<T | Pending>, opts: PollOptions): Promise<T> {
  const { message, timeoutMs = 20_000, intervalMs = 25, retryErrors = true } = opts;
  const deadline = Date.now() + timeoutMs;
  let last: { value: unknown } | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value;
      last = { value };
    } catch (e) {
      if (!retryErrors) throw e;
      lastError = e;
    }
    if (Date.now() >= deadline) break;
    await delay(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
  const seen = last ? ` The last check gave ${describe(last.value)}.` : '';
  const failed = lastError ? ` The last error was: ${lastError instanceof Error ? lastError.message : inspect(lastError)}` : '';
  const detail = opts.detail ? `\n${opts.detail()}` : '';
  throw new PollTimeout(`Timed out after ${timeoutMs} ms waiting for ${message}.${seen}${failed}${detail}`);
}

/**
 * Checks, for `forMs`, that something keeps holding ("the app stays up while the database is
 * down"), failing as soon as it stops. For tests whose behaviour under test is that nothing
 * happens within a window; not for waiting until something happens (that is `poll`).
 */
export async function holdsFor(
  check: () => boolean | Promise<boolean>,
  opts: { forMs: number; intervalMs?: number; message: string; detail?: () => string },
): Promise<void> {
  const { forMs, intervalMs = 25, message } = opts;
  const start = Date.now();
  for (;;) {
    if (!(await check()))
      throw new Error(`Expected ${message} for ${forMs} ms; it stopped after ${Date.now() - start} ms.${opts.detail ? `\n${opts.detail()}` : ''}`);
    const left = start + forMs - Date.now();
    if (left <= 0) return;
    await delay(Math.min(intervalMs, left));
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value instanceof Error) return `the error ${value.message}`;
  try {
    const text = JSON.stringify(value);
    return text.length > 1000 ? `${text.slice(0, 1000)}…` : text;
  } catch {
    return inspect(value); // what JSON cannot show: a cycle, a bigint
  }
}
