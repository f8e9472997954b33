/**
 * One attempt of a step's body (`ctx.step`, a tool call, a model call), as the replay runs it
 * (src/runtime/replay.ts `#runStep`): the body gets its `StepContext`, whose signal aborts when
 * the attempt times out or the worker shuts down. Recording the attempt is the replay's; this
 * only runs it.
 */
import { StepTimeoutError, TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type { StepContext } from './workflow.ts';

export interface Attempt<T> {
  runId: string;
  /** The step's unique name (`name:n` for a repeat). */
  name: string;
  idx: number;
  /** The step's idempotency key (`stepKey`); `<run>:<idx>` when not given. */
  key?: string;
  attempt: number;
  fn: (ctx: StepContext) => Promise<T> | T;
  /** The attempt is abandoned (and fails with StepTimeoutError) after this long; none when absent. */
  timeoutMs: number | undefined;
  /** The step's logger, made on first use. */
  log: () => Logger;
  /** Aborted when the worker shuts down. */
  shutdown: AbortSignal;
}

/**
 * A step's idempotency key: `<run>:<idx>`, and after an edit rewound the run, `<run>:<idx>:g<k>` for
 * a step executed in generation k (the generation of the last rewind that forgot that step, so
 * re-run after its undo). Its undo's key is this plus `:undo`, so each effect has its own.
 */
export function stepKey(run: { id: string; rewinds?: number[] | undefined }, idx: number): string {
  let generation = 0;
  (run.rewinds ?? []).forEach((fromIdx, k) => {
    if (fromIdx <= idx) generation = k + 1;
  });
  return generation ? `${run.id}:${idx}:g${generation}` : `${run.id}:${idx}`;
}

/**
 * Runs one attempt of the body; its result is held (see `holdResult`) until the run's advance
 * ends normally, so that a success the journal could not take is recorded later, not re-earned.
 */
export async function runAttempt<T>(a: Attempt<T>): Promise<T> {
  const { name, timeoutMs, log } = a;
  const ac = new AbortController();
  const onShutdown = () => ac.abort(new TollgateError('TG_WORKER_SHUTDOWN', 'worker shutting down'));
  a.shutdown.addEventListener('abort', onShutdown, { once: true });
  const ctx: StepContext = {
    runId: a.runId,
    step: name,
    attempt: a.attempt,
    idempotencyKey: a.key ?? `${a.runId}:${a.idx}`,
    signal: ac.signal,
    get log() {
      return log();
    },
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    const body = Promise.resolve().then(() => a.fn(ctx));
    if (!timeoutMs) return hold(a, await body);
    body.catch(() => {}); // a timed-out body may still reject later
    const output = await Promise.race([
      body,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const err = new StepTimeoutError(name, timeoutMs);
          ac.abort(err);
          reject(err);
        }, timeoutMs);
      }),
    ]);
    return hold(a, output);
  } finally {
    if (timer) clearTimeout(timer);
    a.shutdown.removeEventListener('abort', onShutdown);
  }
}

function hold<T>(a: Attempt<T>, output: T): T {
  holdResult(a.runId, a.idx, a.attempt, output);
  return output;
}

/**
 * Results held in memory until they are recorded. A step body that finished while its success
 * could not be written (PostgreSQL down, the connection lost) must not run again merely because
 * the database was away: its result is kept here, by run, step index and attempt, and the next
 * advance of the run in this process (the advance job's retry, or the worker's restart once the
 * database answers, with their backoff) finds the step started but unfinished at that attempt and
 * records the held result instead of running the body again. Only when the process itself died is
 * the body run again (with the same idempotency key, as before).
 *
 * Every finished body is held until its run's advance ends normally (then every success of the
 * advance is recorded); an advance that ended in an error keeps its run's results. Bounded: past
 * `MAX_HELD_RUNS` runs the oldest run's are forgotten (their bodies would run again, as before this store).
 */
const MAX_HELD_RUNS = 1000;
/** By run, then by `<step index>:<attempt>`. */
const held = new Map<string, Map<string, { output: unknown }>>();

/** Keeps a finished body's result until its run's advance ends normally. */
export function holdResult(runId: string, idx: number, attempt: number, output: unknown): void {
  let run = held.get(runId);
  if (!run) {
    if (held.size >= MAX_HELD_RUNS) held.delete(held.keys().next().value as string);
    held.set(runId, (run = new Map<string, { output: unknown }>()));
  }
  run.set(`${idx}:${attempt}`, { output });
}

/** The result this process holds for attempt `attempt` of step `idx`, if any (it stays held until recorded). */
export function heldResult(runId: string, idx: number, attempt: number): { output: unknown } | undefined {
  return held.get(runId)?.get(`${idx}:${attempt}`);
}

/** The run's advance ended normally: every result it held is recorded. */
export function releaseHeldResults(runId: string): void {
  held.delete(runId);
}
