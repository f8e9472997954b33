/**
 * Model calls in the journal: each call, answered or failed, is a `model.called` event in
 * tollgate.events (the audit chain's trigger links and signs it like any other event). Its payload
 * is the call's record (src/model/types.ts: model, prompt and version, the redacted request, the
 * answer before re-hydration, tokens, cost, latency, dropped fields, error) plus the caller's
 * context (the intent's conversation, the step's name …). Only redacted text is ever stored here.
 *
 * Retention (src/audit/retention.ts) blanks old payloads; such a record is gone from the list.
 */
import { appendEvent } from '../db/queries/events.ts';
import { selectEventPayloads } from '../db/queries/runs.ts';
import type { Queryable } from '../db/queryable.ts';
import type { ModelCallRecord } from './types.ts';

export const MODEL_CALLED = 'model.called';

export interface ModelCallAt {
  /** The run the call belongs to; null for calls outside a run (understanding a chat message). */
  runId: string | null;
  /** The model step's index in the run; null outside a step. */
  stepIdx: number | null;
  /** Who the call was made for (a principal, or null for the runtime itself). */
  actor: unknown;
  /** Extra fields stored with the record (they never override the record's own). */
  context?: Record<string, unknown>;
}

export async function recordModelCall(q: Queryable, at: ModelCallAt, record: ModelCallRecord): Promise<void> {
  await appendEvent(q, {
    runId: at.runId,
    type: MODEL_CALLED,
    ...(at.stepIdx === null ? {} : { stepIdx: at.stepIdx }),
    ...(at.actor === null || at.actor === undefined ? {} : { actor: at.actor }),
    payload: { ...at.context, ...record },
  });
}

/** A run's model calls in the order they were made, as recorded (context fields included). */
export async function listModelCalls(q: Queryable, runId: string): Promise<(ModelCallRecord & Record<string, unknown>)[]> {
  return selectEventPayloads<ModelCallRecord & Record<string, unknown>>(q, runId, MODEL_CALLED);
}
