/**
 * An edit's undo (Edit and retry, src/runtime/amend.ts), carried out by the executor before it
 * replays the run with its new input. The edit changed what a completed step would receive, so
 * that step and every completed step after it must run again: their undo runs first, newest
 * first, as the workflow defined it for the input they ran with (a replay with the previous
 * input, which executes nothing, finds it), then the journal forgets them and the replay with the
 * new input runs them again, with idempotency keys of the run's new generation (step-attempt.ts).
 *
 * Approvals are not touched here: the gate, replayed with the new input, voids an approval whose
 * parameters changed and asks again (src/approvals/gate.ts), and reuses one whose parameters did not.
 */
import { TollgateError, serializeError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { finishRewind, type PendingRewind } from '../db/queries/rerun.ts';
import * as journal from '../db/queries/runs.ts';
import type { RunRow } from '../db/queries/runs.ts';
import type { Queryable } from '../db/queryable.ts';
import { runCompensation } from './compensation.ts';
import { Replay, type ReplayEnv } from './replay.ts';
import { finishRun } from './run-end.ts';
import type { WorkflowDefinition } from './workflow.ts';

/** Runs the pending rewind of `run`: the run as it is after it, or undefined when an undo failed for good (the run then ended compensation_failed). */
export async function rewindRun(
  q: Queryable,
  run: RunRow,
  def: WorkflowDefinition,
  log: Logger,
  signal: AbortSignal,
  inlineWaitMaxMs: number,
  env: ReplayEnv,
): Promise<RunRow | undefined> {
  const pending = run.rewind as PendingRewind;
  const steps = await journal.loadSteps(q, run.id);
  // Cancelling: completed steps return their records (and register their undo); the first
  // unfinished one stops the replay before anything runs.
  const old = new Replay(q, { ...run, input: pending.previousInput }, def, steps, log, signal, inlineWaitMaxMs, true, env);
  try {
    await def.run(old.context);
  } catch {
    // Stopped at the first unfinished step, as intended.
  }
  const todo = old.compensations.filter((c) => c.idx >= pending.fromIdx && c.row?.status !== 'compensated').reverse();
  for (const c of todo) {
    if (!(await runCompensation(q, run, c, log, signal))) {
      const e = new TollgateError(
        'TG_STEP_FAILED',
        `Compensation of step "${c.name}" failed while an edit was undoing the steps it changes; the run's effects are only partly undone. ` +
          'A person must finish the undo by hand (see the step error in `tollgate runs show`).',
        { runId: run.id, step: c.name },
      );
      await finishRun(q, run, 'compensation_failed', { error: serializeError(e) });
      return undefined;
    }
  }
  const rewound = await finishRewind(q, run.id, pending.fromIdx, { undone: todo.map((c) => c.name), generation: run.generation ?? 0 });
  log.info({ fromIdx: pending.fromIdx, undone: todo.length }, 'edit rewound the run');
  return rewound;
}
