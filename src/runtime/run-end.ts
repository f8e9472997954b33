/**
 * How an advance ends a run, shared by the executor (src/runtime/executor.ts) and the undo
 * (src/runtime/compensation.ts): the journal's end with the run's duration reported to /metrics,
 * and the error that pauses a run whose journal could not be written.
 */
import { TollgateError } from '../common/errors.ts';
import * as journal from '../db/queries/runs.ts';
import type { RunRow } from '../db/queries/runs.ts';
import type { Queryable } from '../db/queryable.ts';
import { observeRunEnd } from '../telemetry/metrics.ts';

export function journalUnreachable(runId: string, cause: unknown): TollgateError {
  return new TollgateError(
    'TG_DB_UNREACHABLE',
    `Run ${runId} paused: its journal could not be written (${(cause as Error).message}). It resumes when the database answers.`,
    { runId },
    { cause },
  );
}

/** Ends the run in the journal, then reports its duration to /metrics (src/telemetry/metrics.ts). */
export async function finishRun(
  q: Queryable,
  run: RunRow,
  status: Parameters<typeof journal.finishRun>[2],
  result: Parameters<typeof journal.finishRun>[3],
  previous?: journal.StepSuccess,
): Promise<void> {
  await journal.finishRun(q, run.id, status, result, previous);
  observeRunEnd(run, status);
}
