/**
 * The undo of a run that failed for good or was cancelled: the compensations of its completed
 * steps run in reverse order of completion, each attempt recorded in the journal and retried like
 * a step (src/db/queries/compensation.ts writes each change with its event). The run ends
 * compensated (or cancelled), or compensation_failed when an undo fails for good: a person must
 * then finish it by hand. Called by the executor (src/runtime/executor.ts) at the end of an advance.
 */
import { NonRetriableError, TollgateError, serializeError, type SerializedError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { pause } from '../common/backoff.ts';
import { failStepCompensation, startCompensating, startStepCompensation, succeedStepCompensation } from '../db/queries/compensation.ts';
import type { RunRow } from '../db/queries/runs.ts';
import type { Queryable } from '../db/queryable.ts';
import type { Replay, Compensation } from './replay.ts';
import { nextDelayMs } from './retry.ts';
import { finishRun } from './run-end.ts';
import { stepKey } from './step-attempt.ts';
import type { CompensationContext } from './workflow.ts';

export async function compensateAndEnd(
  q: Queryable,
  run: RunRow,
  replay: Replay,
  log: Logger,
  cancelled: boolean,
  error: SerializedError | undefined,
  signal: AbortSignal,
): Promise<'finished'> {
  const todo = replay.compensations.filter((c) => c.row?.status !== 'compensated').reverse();
  if (todo.length === 0) {
    await finishRun(q, run, cancelled ? 'cancelled' : 'failed', { error: error ?? null });
    return 'finished';
  }
  await startCompensating(q, run.id, error, todo.length, cancelled ? 'cancelled' : 'failed');
  for (const c of todo) {
    const ok = await runCompensation(q, run, c, log, signal);
    if (!ok) {
      const e = new TollgateError(
        'TG_STEP_FAILED',
        `Compensation of step "${c.name}" failed after ${c.retry.maxAttempts} attempt(s); the run's effects are only partly undone. ` +
          'A person must finish the undo by hand (see the step error in `tollgate runs show`).',
        { runId: run.id, step: c.name },
      );
      await finishRun(q, run, 'compensation_failed', { error: { ...serializeError(e), cause: error } });
      log.error({ step: c.name }, 'compensation failed: needs a person');
      return 'finished';
    }
  }
  await finishRun(q, run, cancelled ? 'cancelled' : 'compensated', { error: error ?? null });
  return 'finished';
}

/** Runs one step's undo, retried by its policy; false when it failed for good. Also used by an edit's rewind (rewind.ts). */
export async function runCompensation(q: Queryable, run: RunRow, c: Compensation, parentLog: Logger, signal: AbortSignal): Promise<boolean> {
  const log = parentLog.child({ step: c.name, compensation: true });
  for (let attempt = 1; attempt <= c.retry.maxAttempts; attempt++) {
    if (signal.aborted) {
      // Shutting down: leave the run 'compensating'; the next worker resumes the undo here.
      throw new TollgateError('TG_RUN_BUSY', `Worker shutting down during the compensation of run ${run.id}; another worker resumes it.`, { runId: run.id });
    }
    await startStepCompensation(q, run.id, c.idx, c.name, attempt);
    const ac = new AbortController();
    const onShutdown = () => ac.abort(new TollgateError('TG_WORKER_SHUTDOWN', 'worker shutting down'));
    signal.addEventListener('abort', onShutdown, { once: true });
    const ctx: CompensationContext = {
      runId: run.id,
      step: c.name,
      attempt,
      idempotencyKey: `${stepKey(run, c.idx)}:undo`,
      signal: ac.signal,
      log,
      output: c.output,
    };
    let undone = false;
    try {
      await c.fn(ctx);
      undone = true;
    } catch (e) {
      const last = attempt >= c.retry.maxAttempts || e instanceof NonRetriableError;
      await failStepCompensation(q, run.id, { idx: c.idx, name: c.name, attempt, last, error: serializeError(e) });
      log.warn({ err: e, attempt }, 'compensation attempt failed');
      if (last) return false;
      await pause(nextDelayMs(c.retry, attempt, e), signal);
    } finally {
      signal.removeEventListener('abort', onShutdown);
    }
    if (undone) {
      // Outside the try: a failed write here is a database problem, not a failed undo, and
      // must not be counted as an attempt (the advance fails and the undo is resumed).
      await succeedStepCompensation(q, run.id, c.idx, c.name, attempt);
      return true;
    }
  }
  return false;
}
