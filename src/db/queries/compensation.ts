/**
 * The journal's statements of an undo (compensation): each changes a run's or a step's state and
 * appends the matching event in one statement, as in src/db/queries/runs.ts. The executor decides
 * what to undo and when (src/runtime/compensation.ts).
 */
import type { Queryable } from '../queryable.ts';
import { INSERT_EVENTS } from './events.ts';

/** The run starts undoing `steps` completed steps (once: a run already compensating is left as it is). */
export async function startCompensating(q: Queryable, runId: string, error: unknown, steps: number, reason: 'cancelled' | 'failed'): Promise<void> {
  await q.query(
    `WITH r AS (UPDATE tollgate.runs SET status = 'compensating', error = coalesce($2, error), updated_at = now() WHERE id = $1 AND status <> 'compensating' RETURNING id)
       ${INSERT_EVENTS} SELECT id, 'run.compensating', NULL, NULL, jsonb_build_object('steps', $3::int, 'reason', $4::text) FROM r`,
    [runId, error ? JSON.stringify(error) : null, steps, reason],
  );
}

/** An attempt of the step's compensation begins. */
export async function startStepCompensation(q: Queryable, runId: string, idx: number, name: string, attempt: number): Promise<void> {
  await q.query(
    `WITH s AS (UPDATE tollgate.steps SET status = 'compensating', updated_at = now() WHERE run_id = $1 AND idx = $2 RETURNING run_id, idx)
         ${INSERT_EVENTS} SELECT run_id, 'step.compensating', idx, NULL, jsonb_build_object('step', $3::text, 'attempt', $4::int) FROM s`,
    [runId, idx, name, attempt],
  );
}

/** An attempt of the step's compensation failed: for good (`last`) or to be tried again. */
export async function failStepCompensation(
  q: Queryable,
  runId: string,
  c: { idx: number; name: string; attempt: number; last: boolean; error: unknown },
): Promise<void> {
  await q.query(
    `WITH s AS (UPDATE tollgate.steps SET status = $5, error = $4, updated_at = now() WHERE run_id = $1 AND idx = $2 RETURNING run_id, idx)
           ${INSERT_EVENTS} SELECT run_id, 'step.compensation_failed', idx, NULL,
             jsonb_build_object('step', $3::text, 'attempt', $6::int, 'final', $7::boolean, 'error', $4::jsonb) FROM s`,
    [runId, c.idx, c.name, JSON.stringify(c.error), c.last ? 'compensation_failed' : 'compensating', c.attempt, c.last],
  );
}

/** The step's effect is undone. */
export async function succeedStepCompensation(q: Queryable, runId: string, idx: number, name: string, attempt: number): Promise<void> {
  await q.query(
    `WITH s AS (UPDATE tollgate.steps SET status = 'compensated', updated_at = now() WHERE run_id = $1 AND idx = $2 RETURNING run_id, idx)
           ${INSERT_EVENTS} SELECT run_id, 'step.compensated', idx, NULL, jsonb_build_object('step', $3::text, 'attempt', $4::int) FROM s`,
    [runId, idx, name, attempt],
  );
}
