/**
 * Stale buttons: a click on an outdated copy is answered, never acted on twice.
 *
 * Every run message and approval copy carries the revision of the view it shows (the run's
 * newest event's place in its audit chain: `RunView.revision`, src/db/queries/run-views.ts), and
 * its buttons carry that revision (Slack: `<id>@<revision>` in `value`; Teams: `v` in the
 * `Action.Execute` data). When a click arrives, in the transaction that would carry it out and
 * before anything changes, `answerIfOutdated` reads the journal after that revision and decides
 * whether the action is still what the person meant:
 *
 * - Actions on a failed run (Retry, and any later action that acts on a failed run: rule
 *   `on-failed`) are outdated when the run is no longer failed (or dead-lettered), or when
 *   anything happened to the run since (it was retried, cancelled, a step ran again: any `run.*`
 *   or `step.*` event but the failure's own). A failed run's journal does not move unless someone acted on it, so two
 *   Retry clicks on copies of the same version can never both retry, wherever the copies are.
 * - Cancel (rule `stop`) is outdated when the run has ended, a cancel was already requested, or
 *   since the copy the run was retried, dead-lettered, or one of its approvals was decided for
 *   good, escalated, expired or voided: what the person would stop is no longer what they saw.
 *   Plain progress (a step started or finished) does not make it outdated.
 * - Approve and Reject are outdated when the approval is no longer pending, its deadline has
 *   passed, its run has ended, or it was escalated since the copy. Only the tally changing (others
 *   approved meanwhile) does not: the decision goes ahead. A clicker who already decided is left to
 *   `decide`, which answers "already recorded" (invariant 4).
 *
 * An outdated click changes nothing: the clicker is told what happened since and the state now
 * (an ephemeral message through the outbox, or on the card a Teams click is answered with), the
 * run's and the approval's copies are delivered again, and the copy that was clicked is redrawn
 * even if the outbox believes it current. A click without a revision (a message posted before
 * versions existed, a typed command) is carried out as before.
 *
 * Race: the check takes the lock the action itself takes first (the run row `FOR NO KEY UPDATE`
 * as `Runtime.retry`/`cancel` do; the approval row `FOR UPDATE` as `decide` does), then reads
 * the journal; a concurrent click that acted first has committed its event by the time the lock
 * is granted, and is seen.
 */
import { TollgateError } from '../../common/errors.ts';
import { formatPrincipal, type Principal } from '../../common/principals.ts';
import type { Queryable } from '../../db/queryable.ts';
import { findDecision, isPast, loadApprovalRow } from '../../db/queries/approvals.ts';
import { enqueueApprovalDelivery, enqueueRunDelivery } from '../../db/queries/chat-outbox.ts';
import { forgetPostedRendering } from '../../db/queries/chat-delivery.ts';
import { listEventsSince, type RevisionEventRow } from '../../db/queries/run-views.ts';
import { isTerminalStatus, readRun, type RunRow } from '../../db/queries/runs.ts';
import { loadApprovalCopyView, loadRunMessageView } from '../../views/load-run-view.ts';
import { approvalNow, buildOutdatedView, runNow, type OutdatedView } from '../../views/outdated-view.ts';
import type { Where } from '../outbox.ts';
import type { ChatReply } from '../replies.ts';
import type { Intake } from './context.ts';
import type { Shown } from './types.ts';

/** What a click acts on: a run (Retry, Cancel, …) or an approval (Approve, Reject). */
export type ClickTarget = { on: 'run'; action: string; runId: string } | { on: 'approval'; action: 'approve' | 'reject'; approvalId: string };

/** How an action on a run goes stale (see the module's notes). */
export type RunActionRule = 'on-failed' | 'stop';

/** The rule of each run action; an action not listed acts on a failed run (`on-failed`). */
export const RUN_ACTION_RULES: Readonly<Record<string, RunActionRule>> = { retry: 'on-failed', cancel: 'stop' };

/** The failure itself: the copy that offers Retry shows it (even one drawn at a revision just before it). */
const FAILURE = new Set(['step.failed', 'run.failed', 'run.dead_lettered']);

/** Events after which Cancel no longer stops what the person saw. */
const CANCEL_MOVED = new Set([
  'run.retried',
  'run.cancel_requested',
  'run.dead_lettered',
  'approval.approved',
  'approval.rejected',
  'approval.expired',
  'approval.escalated',
  'approval.voided',
]);

/** Is an action on this run, clicked on a copy followed by `since`, outdated? Pure. */
export function runActionOutdated(
  rule: RunActionRule,
  run: Pick<RunRow, 'status' | 'cancel_requested_at'>,
  since: readonly Pick<RevisionEventRow, 'type'>[],
): boolean {
  if (rule === 'on-failed') {
    if (run.status !== 'failed' && run.status !== 'dead_letter') return true;
    return since.some((e) => (e.type.startsWith('run.') || e.type.startsWith('step.')) && !FAILURE.has(e.type));
  }
  if (isTerminalStatus(run.status) || run.cancel_requested_at) return true;
  return since.some((e) => CANCEL_MOVED.has(e.type));
}

/** Is a decision on this approval, clicked on a copy followed by `since`, outdated? Pure. */
export function decisionOutdated(
  approval: { id: string; status: string; runEnded: boolean; deadlinePassed: boolean },
  since: readonly Pick<RevisionEventRow, 'type' | 'payload'>[],
): boolean {
  if (approval.status !== 'pending' || approval.runEnded || approval.deadlinePassed) return true;
  return since.some((e) => e.type === 'approval.escalated' && e.payload?.approvalId === approval.id);
}

/** Whether `actor` may read the run (Runtime.readRun: its tenant, its approvers, operators): nobody learns a run's history from a forged button. */
type MayRead = (runId: string) => Promise<boolean>;

async function checkRun(q: Queryable, action: string, runId: string, shown: Shown, mayRead: MayRead): Promise<OutdatedView | undefined> {
  // The lock Runtime.retry and cancel take (NO KEY UPDATE: see Runtime #lockRun), taken first.
  const run = await readRun(q, runId, 'FOR NO KEY UPDATE');
  if (!run || !(await mayRead(runId))) return undefined; // the action answers "no such run", or refuses
  const since = await listEventsSince(q, runId, shown.revision);
  if (!runActionOutdated(RUN_ACTION_RULES[action] ?? 'on-failed', run, since)) return undefined;
  const view = await loadRunMessageView(q, runId);
  return buildOutdatedView({ runId, since, now: view ? runNow(view) : run.status });
}

async function checkApproval(q: Queryable, approvalId: string, actor: Principal, shown: Shown, mayRead: MayRead): Promise<OutdatedView | undefined> {
  // The lock decide takes, taken first.
  const row = await loadApprovalRow(q, approvalId, true);
  if (!row || !(await mayRead(row.run_id))) return undefined; // decide answers "no such approval", or refuses
  if (await findDecision(q, approvalId, formatPrincipal(actor))) return undefined; // decide answers "already recorded"
  const since = await listEventsSince(q, row.run_id, shown.revision);
  const deadlinePassed = row.status === 'pending' && row.expires_at !== null && (await isPast(q, row.expires_at));
  const facts = { id: approvalId, status: row.status, runEnded: isTerminalStatus(row.run_status ?? ''), deadlinePassed };
  if (!decisionOutdated(facts, since)) return undefined;
  const view = await loadApprovalCopyView(q, approvalId);
  let now = view ? approvalNow(view) : `the approval is ${row.status}`;
  if (deadlinePassed) now = `its deadline passed at ${row.expires_at?.toISOString() ?? '?'}; it is being escalated or expired`;
  return buildOutdatedView({ runId: row.run_id, approvalId, since, now });
}

/**
 * Outdated or not: the answer when the click was made on an outdated copy and its action no
 * longer means what the person saw (see the module's notes); undefined when it may go ahead.
 * Call it inside the action's transaction, before the action.
 */
export function checkOutdated(ix: Intake, q: Queryable, target: ClickTarget, actor: Principal, shown: Shown): Promise<OutdatedView | undefined> {
  const mayRead: MayRead = (runId) =>
    ix.o.runtime.readRun(runId, actor, q).then(
      () => true,
      (e: unknown) => {
        if (e instanceof TollgateError) return false;
        throw e;
      },
    );
  return target.on === 'run' ? checkRun(q, target.action, target.runId, shown, mayRead) : checkApproval(q, target.approvalId, actor, shown, mayRead);
}

/** Delivers the run's and the approval's copies again, redrawing the clicked one even if the outbox thinks it current. */
export async function refreshCopies(q: Queryable, outdated: OutdatedView, shown: Shown): Promise<void> {
  if (shown.message) await forgetPostedRendering(q, shown.message);
  await enqueueRunDelivery(q, outdated.runId);
  if (outdated.approvalId) await enqueueApprovalDelivery(q, outdated.approvalId);
}

type OutdatedReply = Extract<ChatReply, { kind: 'outdated' }>;

/**
 * For every action a button starts (Retry, Cancel, Approve, Reject, and any action added later):
 * when `shown` says the click was made on an outdated copy and the action no longer holds,
 * refreshes the copies and returns the answer for the clicker; the caller then does nothing else
 * (and explains the answer like a refusal). Undefined: go ahead. In the action's transaction,
 * before the action.
 */
export async function outdatedAnswer(
  ix: Intake,
  q: Queryable,
  target: ClickTarget,
  actor: Principal,
  shown: Shown | undefined,
): Promise<OutdatedReply | undefined> {
  if (!shown) return undefined;
  const outdated = await checkOutdated(ix, q, target, actor, shown);
  if (!outdated) return undefined;
  await refreshCopies(q, outdated, shown);
  ix.o.log.info(
    { ...target, actor: formatPrincipal(actor), revision: shown.revision, changes: outdated.changes.length },
    'a click on an outdated copy was answered; nothing was done',
  );
  return { kind: 'outdated', outdated };
}

/** `outdatedAnswer`, and the answer explained to the clicker at `explainAt` (none: the caller shows it, as a Teams card does). */
export async function answerIfOutdated(
  ix: Intake,
  q: Queryable,
  click: { target: ClickTarget; actor: Principal; shown: Shown | undefined; explainAt: Where | null },
): Promise<OutdatedReply | undefined> {
  const reply = await outdatedAnswer(ix, q, click.target, click.actor, click.shown);
  if (reply) await ix.explain(click.actor, click.explainAt, reply, q);
  return reply;
}
