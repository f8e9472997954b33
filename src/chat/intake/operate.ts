/**
 * Retry and Cancel from chat (a button, a command): the runtime decides whether this actor may;
 * a refusal changes nothing and is explained.
 */
import { TollgateError } from '../../common/errors.ts';
import type { Principal } from '../../common/principals.ts';
import type { Queryable } from '../../db/queryable.ts';
import { releaseSavepoint, rollbackToSavepoint, savepoint } from '../../db/queries/savepoints.ts';
import { withTransaction } from '../../db/transaction.ts';
import { remember } from '../directory.ts';
import { claimDeliveryKey } from '../../db/queries/chat-outbox.ts';
import { notice, type ChatReply } from '../replies.ts';
import { outdatedPlain } from '../../views/text.ts';
import { outdatedAnswer } from './stale.ts';
import type { Intake } from './context.ts';
import type { DeferredIntent, Intent, Shown, SubmitResult } from './types.ts';

const SAVEPOINT = 'chat_operate';

export async function submitOperate(ix: Intake, intent: Extract<Intent, { kind: 'operate' }>): Promise<SubmitResult> {
  if (intent.carryOut === 'after-ack' && intent.explainAt) {
    const { action, runId, actor, explainAt, shown } = intent;
    const payload: DeferredIntent = { kind: 'operate', action, runId, actor, explainAt, ...(shown ? { shown } : {}) };
    const recorded = await ix.deferred.submit({ key: { platform: intent.actor.platform, ...intent.key }, payload, remember: intent.remember });
    return { duplicate: !recorded, runId: intent.runId };
  }
  return withTransaction(ix.o.pool, async (q) => {
    await remember(q, intent.remember);
    if (!(await claimDeliveryKey(q, intent.actor.platform, intent.key.key, intent.key.kind))) return { duplicate: true };
    const outcome = await operate(ix, q, intent.action, intent.runId, intent.actor, intent.shown);
    // The refusal is recorded with the click and explained after the ack, through the outbox.
    if (!outcome.ok) await ix.explain(intent.actor, intent.explainAt, outcome.reply ?? outcome.text, q);
    return { duplicate: false, runId: intent.runId, reply: outcome.reply ?? notice(outcome.text) };
  });
}

/**
 * Retry or cancel. Whether this actor may is the runtime's decision (the requester or an
 * operator); refusals and state errors change nothing and are reported back (the caller decides
 * how: explanation, reply or ack text). A click on an outdated copy (`shown`, stale.ts) whose
 * action no longer holds changes nothing either: its copies are refreshed and `reply` says what
 * happened since (the caller explains it like a refusal).
 */
export async function operate(
  ix: Intake,
  q: Queryable,
  kind: 'retry' | 'cancel',
  runId: string,
  actor: Principal,
  shown?: Shown,
): Promise<{ ok: boolean; text: string; reply?: ChatReply }> {
  await savepoint(q, SAVEPOINT);
  try {
    const outdated = await outdatedAnswer(ix, q, { on: 'run', action: kind, runId }, actor, shown);
    if (outdated) {
      await releaseSavepoint(q, SAVEPOINT);
      return { ok: false, text: outdatedPlain(outdated.outdated), reply: outdated };
    }
    const opts = { client: q, via: actor.platform };
    if (kind === 'retry') await ix.o.runtime.retry(runId, actor, opts);
    else await ix.o.runtime.cancel(runId, actor, opts);
    await releaseSavepoint(q, SAVEPOINT);
    return { ok: true, text: kind === 'retry' ? `Retrying \`${runId}\` from the step that failed.` : `Cancelling \`${runId}\`.` };
  } catch (e) {
    await rollbackToSavepoint(q, SAVEPOINT);
    if (e instanceof TollgateError && e.code === 'TG_RUN_NOT_FOUND') return { ok: false, text: `No run with id \`${runId}\`.` };
    if (e instanceof TollgateError) return { ok: false, text: e.message };
    throw e;
  }
}
