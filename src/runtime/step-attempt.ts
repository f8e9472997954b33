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
    if (!timeoutMs) return await body;
    body.catch(() => {}); // a timed-out body may still reject later
    return await Promise.race([
      body,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const err = new StepTimeoutError(name, timeoutMs);
          ac.abort(err);
          reject(err);
        }, timeoutMs);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
    a.shutdown.removeEventListener('abort', onShutdown);
  }
}
