/**
 * An approval decision from chat: a reject needs a reason; the rest is `decide`'s to answer,
 * now (its outcome shown in the answer) or after the ack (a refusal explained through the outbox).
 */
import { getApproval, observeDecided } from '../../approvals/index.ts';
import { withRetriedTransaction } from '../../db/transaction.ts';
import { remember } from '../directory.ts';
import { REJECT_REASON_REQUIRED } from '../sentences.ts';
import type { Intake } from './context.ts';
import { answerIfOutdated, type ClickTarget } from './stale.ts';
import type { DeferredIntent, Intent, Shown, SubmitResult } from './types.ts';
import type { Principal } from '../../common/principals.ts';
import type { Where } from '../outbox.ts';

export async function submitDecide(ix: Intake, intent: Extract<Intent, { kind: 'decide' }>): Promise<SubmitResult> {
  // A rejection tells the requester why: without a reason nothing is recorded, on any platform.
  if (intent.decision === 'reject' && !intent.comment?.trim()) {
    await remember(ix.o.pool, intent.remember);
    return { duplicate: false, fieldErrors: { comment: REJECT_REASON_REQUIRED } };
  }
  // A repeated decision is a no-op answered "already recorded", so decisions need no delivery key.
  if (intent.carryOut === 'after-ack' && intent.explainAt) {
    const { approvalId, decision, comment, actor, explainAt, via, shown } = intent;
    const payload: DeferredIntent = {
      kind: 'decide',
      approvalId,
      decision,
      ...(comment !== undefined ? { comment } : {}),
      actor,
      explainAt,
      ...(via !== undefined ? { via } : {}),
      ...(shown ? { shown } : {}),
    };
    await ix.deferred.submit({ payload, remember: intent.remember });
    return { duplicate: false };
  }
  // Decided now, in one transaction with what the activity said of where people are and the
  // explanation of anything but a recorded decision.
  const via = intent.via ?? intent.explainAt?.platform ?? intent.actor.platform;
  const outcome = await withRetriedTransaction(ix.o.pool, async (q) => {
    await remember(q, intent.remember);
    // A click on an outdated copy whose decision no longer holds: answered, nothing recorded (stale.ts).
    const outdated = await answerIfOutdated(ix, q, outdatedDecision(intent));
    if (outdated) return outdated;
    const o = await ix.o.runtime.decideWithin(q, intent.approvalId, intent.actor, intent.decision, intent.comment, { via });
    if (o.kind !== 'recorded') await ix.explain(intent.actor, intent.explainAt, o.message, q);
    return o;
  });
  if (outcome.kind === 'outdated') return { duplicate: false, reply: outcome };
  observeDecided(outcome);
  // The state after commit, so the adapter renders what others will see.
  const approval = await getApproval(ix.o.pool, intent.approvalId);
  return { duplicate: false, decided: approval ? { ...outcome, approval } : outcome };
}

/** A decision click as stale.ts's `answerIfOutdated` takes it (from an intent, or a deferred one). */
export function outdatedDecision(d: {
  approvalId: string;
  decision: 'approve' | 'reject';
  actor: Principal;
  explainAt: Where | null;
  shown?: Shown | undefined;
}): {
  target: ClickTarget;
  actor: Principal;
  shown: Shown | undefined;
  explainAt: Where | null;
} {
  return { target: { on: 'approval', action: d.decision, approvalId: d.approvalId }, actor: d.actor, shown: d.shown, explainAt: d.explainAt };
}
