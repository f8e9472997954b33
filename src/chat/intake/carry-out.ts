/**
 * Carrying out what was recorded before the ack (the worker's `chat-intent` job).
 */
import { observeDecided } from '../../approvals/index.ts';
import type { DecideOutcome } from '../../approvals/types.ts';
import { withRetriedTransaction } from '../../db/transaction.ts';
import { holdAdvanceJob, holdApprovalAdvanceJob, type HeldAdvance } from '../../db/queries/advance-hold.ts';
import type { Queryable } from '../../db/queryable.ts';
import { writeRunStarts } from '../intake-writes.ts';
import { refreshName } from '../people.ts';
import type { Intake } from './context.ts';
import { outdatedDecision } from './decide.ts';
import { operate } from './operate.ts';
import { answerIfOutdated } from './stale.ts';
import { confirm, understand } from './proposals.ts';
import { deferredIntentSchema } from './types.ts';

/**
 * Carries out a click recorded with `carryOut: 'after-ack'` (the worker's `chat-intent` job),
 * in one transaction with its explanation: a refusal, or a decision that changed nothing, is
 * told to the clicker at `explainAt`. A payload this version cannot read is logged and dropped
 * (retrying would not make it readable).
 *
 * With `opts.holdAdvanceAs` (the worker's lock id), a decision that resolved its gate, a Retry or
 * a Cancel also locks the run's advance job under that id in the same transaction, and returns
 * it: the worker then advances the run itself, in the same turn (src/worker/one-hop.ts), and the
 * job stays the fallback should the process die first (src/db/queries/advance-hold.ts).
 */
export async function carryOut(ix: Intake, payload: unknown, opts: CarryOutOptions = {}): Promise<HeldAdvance | undefined> {
  const parsed = deferredIntentSchema.safeParse(payload);
  if (!parsed.success) {
    ix.o.log.error({ payload, issues: parsed.error.issues }, 'a deferred chat intent could not be read; dropped');
    return;
  }
  const intent = parsed.data;
  // Who acts, by name (Slack's users.info when the directory has none or it is a day old), before
  // the decision that keeps the name it was made under. Outside any transaction; never fails.
  const actor = intent.kind === 'start' ? intent.run.requester : intent.actor;
  if (actor) await refreshName(ix.o.pool, ix.o.platforms, actor, ix.o.log);
  // The model is asked outside any transaction: nothing is locked while it thinks.
  if (intent.kind === 'understand') {
    await understand(ix, intent);
    return undefined;
  }
  let decided: DecideOutcome | undefined;
  let held: HeldAdvance | undefined;
  const lockedBy = opts.holdAdvanceAs;
  const hold = async (q: Queryable, run: { runId: string } | { approvalId: string }) => {
    if (!lockedBy) return;
    if ('runId' in run) {
      const jobId = await holdAdvanceJob(q, run.runId, lockedBy);
      if (jobId) held = { runId: run.runId, jobId, lockedBy };
    } else {
      const job = await holdApprovalAdvanceJob(q, run.approvalId, lockedBy);
      if (job) held = { ...job, lockedBy };
    }
  };
  await withRetriedTransaction(ix.o.pool, async (q) => {
    decided = undefined; // a retried transaction decides again
    held = undefined;
    if (intent.kind === 'start') {
      // Written again after a crash, the run already exists and nothing is written twice.
      const [created] = await writeRunStarts(q, [{ run: intent.run, message: intent.where }]);
      if (created) ix.o.log.info({ runId: intent.run.id, workflow: intent.run.workflow, version: intent.run.version }, 'run queued');
      return;
    }
    if (intent.kind === 'decide') {
      if (await answerIfOutdated(ix, q, outdatedDecision(intent))) return; // a stale button: answered, nothing recorded
      const via = intent.via ?? intent.explainAt.platform;
      const outcome = await ix.o.runtime.decideWithin(q, intent.approvalId, intent.actor, intent.decision, intent.comment, { via });
      if (outcome.kind !== 'recorded') await ix.explain(intent.actor, intent.explainAt, outcome.message, q);
      else if (outcome.resolved) await hold(q, { approvalId: intent.approvalId });
      decided = outcome;
      return;
    }
    if (intent.kind === 'confirm') {
      const outcome = await confirm(ix, q, intent.proposalId, intent.actor);
      if (!outcome.ok) await ix.explain(intent.actor, intent.explainAt, outcome.text, q);
      return;
    }
    const outcome = await operate(ix, q, intent.action, intent.runId, intent.actor, intent.shown);
    if (!outcome.ok) await ix.explain(intent.actor, intent.explainAt, outcome.reply ?? outcome.text, q);
    else await hold(q, { runId: intent.runId });
  });
  if (decided) observeDecided(decided);
  return held;
}

export interface CarryOutOptions {
  /** The lock id of the worker carrying the click out, to hold the run's advance job under (see carryOut). */
  holdAdvanceAs?: string;
}
