/**
 * The events table (`tollgate.events`): the audit trail every change of a run appends to, in the
 * same transaction and usually the same statement as the change (data-modifying CTEs).
 *
 * This module is the one place that writes to it. A statement that appends events in a CTE uses
 * `INSERT_EVENTS` followed by a `SELECT` or `VALUES` of the five columns, in this order:
 * `run_id, type, step_idx, actor, payload`; a lone event goes through `appendEvent`. The audit
 * chain (migrations/functions) links each row as it is inserted, whoever inserts it.
 */
import type { Queryable } from '../queryable.ts';

/** The head of every insert into the events table; follow it with the rows' SELECT or VALUES. */
export const INSERT_EVENTS = 'INSERT INTO tollgate.events (run_id, type, step_idx, actor, payload)';

export interface NewEvent {
  runId: string | null;
  type: string;
  stepIdx?: number;
  actor?: unknown;
  payload?: Record<string, unknown>;
}

export async function appendEvent(q: Queryable, e: NewEvent): Promise<void> {
  await q.query(`${INSERT_EVENTS} VALUES ($1, $2, $3, $4, $5)`, [
    e.runId,
    e.type,
    e.stepIdx ?? null,
    e.actor === undefined ? null : JSON.stringify(e.actor),
    JSON.stringify(e.payload ?? {}),
  ]);
}
