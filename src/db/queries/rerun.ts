/**
 * The journal writes of Edit and retry and of Resolve by hand (src/runtime/amend.ts,
 * src/runtime/rewind.ts): a run's input replaced, its pending rewind, the step whose failure held
 * the run's undo, a failed step marked done by hand. Each caller appends the event in the same
 * transaction (or statement).
 */
import type { Queryable } from '../queryable.ts';
import type { RunRow } from './runs.ts';
import { INSERT_EVENTS } from './events.ts';

/** The failed step whose failure held the run's undo, and what the workflow lets a person do about it. */
export interface HeldStep {
  idx: number;
  name: string;
  kind: string;
  byHand: boolean;
  skip: boolean;
  giveUp: boolean;
}

/** An edit's undo waiting for the executor. */
export interface PendingRewind {
  fromIdx: number;
  previousInput: unknown;
}

/** Records the step that held the run's undo when it failed (before the run is ended failed). */
export async function holdRun(q: Queryable, runId: string, held: HeldStep): Promise<void> {
  await q.query(`UPDATE tollgate.runs SET held = $2 WHERE id = $1`, [runId, JSON.stringify(held)]);
}

/**
 * A failed run queued again with a new input; with `rewind`, its generation is counted up and
 * the undo of the steps from `rewind.fromIdx` on left for the executor (which appends
 * `fromIdx` to `rewinds` once the undo is done: src/runtime/step-attempt.ts `stepKey`).
 */
export async function requeueEdited(q: Queryable, runId: string, input: unknown, rewind: PendingRewind | null): Promise<RunRow> {
  const { rows } = await q.query<RunRow>(
    `UPDATE tollgate.runs SET status = 'queued', input = $2, error = NULL, finished_at = NULL, held = NULL,
            rewind = $3, generation = generation + CASE WHEN $3::jsonb IS NULL THEN 0 ELSE 1 END, updated_at = now()
      WHERE id = $1 RETURNING *`,
    [runId, JSON.stringify(input), rewind === null ? null : JSON.stringify(rewind)],
  );
  return rows[0] as RunRow;
}

/** Clears the held undo (a plain Retry of a held run). */
export async function clearHeld(q: Queryable, runId: string): Promise<void> {
  await q.query(`UPDATE tollgate.runs SET held = NULL WHERE id = $1 AND held IS NOT NULL`, [runId]);
}

/**
 * The rewind done: the steps from `fromIdx` on are forgotten (their undo has run; they run again
 * with the new input), the pending rewind cleared, and the event appended, in one statement.
 */
export async function finishRewind(q: Queryable, runId: string, fromIdx: number, payload: Record<string, unknown>): Promise<RunRow> {
  const { rows } = await q.query<RunRow>(
    `WITH d AS (DELETE FROM tollgate.steps WHERE run_id = $1 AND idx >= $2 RETURNING idx),
          r AS (UPDATE tollgate.runs SET rewind = NULL, rewinds = rewinds || $2::integer, updated_at = now() WHERE id = $1 RETURNING *),
          e AS (${INSERT_EVENTS} SELECT id, 'run.rewound', $2, NULL, $3::jsonb || jsonb_build_object('forgotten', (SELECT count(*) FROM d)) FROM r)
     SELECT * FROM r`,
    [runId, fromIdx, JSON.stringify(payload)],
  );
  return rows[0] as RunRow;
}

/** A failed step marked done by a person with `output`; the run queued to continue after it. */
export async function resolveStepByHand(q: Queryable, runId: string, idx: number, output: unknown): Promise<RunRow> {
  await q.query(
    `UPDATE tollgate.steps SET status = 'succeeded', output = $3, error = NULL, next_attempt_at = NULL, finished_at = now(), updated_at = now()
      WHERE run_id = $1 AND idx = $2`,
    [runId, idx, JSON.stringify(output ?? null)],
  );
  const { rows } = await q.query<RunRow>(
    `UPDATE tollgate.runs SET status = 'queued', error = NULL, finished_at = NULL, held = NULL, updated_at = now() WHERE id = $1 RETURNING *`,
    [runId],
  );
  return rows[0] as RunRow;
}

/**
 * Skip and compensate: the failed run queued with cancellation requested, so the executor undoes
 * its completed steps and ends it compensated.
 */
export async function requeueToCompensate(q: Queryable, runId: string, actor: unknown): Promise<RunRow> {
  const { rows } = await q.query<RunRow>(
    `UPDATE tollgate.runs SET status = 'queued', held = NULL, finished_at = NULL,
            cancel_requested_at = now(), cancel_requested_by = $2, updated_at = now()
      WHERE id = $1 RETURNING *`,
    [runId, JSON.stringify(actor)],
  );
  return rows[0] as RunRow;
}

/** Give up: the run stays failed, nothing undone, and no longer offered a retry (its error says so). */
export async function giveUpRun(q: Queryable, runId: string, givenUp: Record<string, unknown>): Promise<RunRow> {
  const { rows } = await q.query<RunRow>(
    `UPDATE tollgate.runs SET held = NULL, error = coalesce(error, '{}'::jsonb) || jsonb_build_object('givenUp', $2::jsonb), updated_at = now()
      WHERE id = $1 RETURNING *`,
    [runId, JSON.stringify(givenUp)],
  );
  return rows[0] as RunRow;
}
