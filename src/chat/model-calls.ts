/**
 * The journal record of a chat's model call (a free-text request understood, or not): a
 * `model.called` event with no run (invariant 9), written in the transaction that answers the
 * person, with what it led to (`context`: the proposal's id, or what was asked).
 */
import type { ModelCallRecord } from '../model/types.ts';
import type { Principal } from '../principals.ts';
import { appendEvent, type Queryable } from '../runtime/journal.ts';

export async function recordChatModelCall(q: Queryable, actor: Principal, context: Record<string, unknown>, record: ModelCallRecord): Promise<void> {
  // Stand-in until src/model/record.ts (recordModelCall) lands on this branch.
  await appendEvent(q, { runId: null, type: 'model.called', actor, payload: { ...record, context } });
}
