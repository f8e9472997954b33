/**
 * An approval's copies, written once for every platform: a copy in the thread of the run's
 * message, and a direct message to each approver on whatever platform their principal names (a
 * Teams approver of a run started in Slack gets a Teams DM). Also when the undecided are
 * reminded (who may still decide is src/approvals/eligibility.ts's).
 *
 * Copies are rows of `chat_messages` (kind 'approval', one per `copy`: 'thread' or the approver's
 * principal), created by the approval's delivery the first time it sees the approval pending.
 */
import { barredAsRequester } from '../approvals/eligibility.ts';
import type { ApprovalRecord } from '../approvals/types.ts';
import { parsePrincipal, type Principal } from '../common/principals.ts';
import type { Queryable } from '../db/queryable.ts';
import { insertDmCopy, insertThreadCopy, readRunMessagePlace } from '../db/queries/chat-outbox.ts';

function principalOrNull(s: string): Principal | null {
  try {
    return parsePrincipal(s);
  } catch {
    return null;
  }
}

/** The approvers a DM goes to: eligible principals on the given platforms, not the requester (unless self-approval is allowed). */
export function dmApprovers(a: ApprovalRecord, platforms: ReadonlySet<string>): Principal[] {
  return a.eligible
    .filter((p) => !barredAsRequester(p, a))
    .map(principalOrNull)
    .filter((p): p is Principal => p !== null && platforms.has(p.platform));
}

/**
 * Creates the missing copies of a pending approval (idempotent). The thread copy needs the run
 * message's id (the thread); until that message is posted there is none, and the run's delivery
 * schedules this approval's delivery again once it posts it (deliver.ts).
 */
export async function ensureApprovalCopies(q: Queryable, a: ApprovalRecord, platforms: ReadonlySet<string>): Promise<void> {
  const msg = await readRunMessagePlace(q, a.runId);
  if (msg?.message_id && platforms.has(msg.platform)) {
    await insertThreadCopy(q, {
      platform: msg.platform,
      runId: a.runId,
      approvalId: a.id,
      tenant: msg.tenant,
      conversation: msg.conversation,
      thread: msg.thread ?? msg.message_id,
      address: msg.address,
    });
  }
  for (const p of dmApprovers(a, platforms)) {
    const principal = `${p.platform}:${p.tenant}:${p.user}`;
    await insertDmCopy(q, { platform: p.platform, runId: a.runId, approvalId: a.id, principal, tenant: p.tenant });
  }
}

/** When to remind: `leadMs` before the deadline, but never earlier than half-way to it. */
export function reminderTime(a: Pick<ApprovalRecord, 'createdAt' | 'expiresAt'>, leadMs: number): Date | undefined {
  if (!a.expiresAt) return undefined;
  const due = new Date(a.expiresAt).getTime();
  const span = due - new Date(a.createdAt).getTime();
  return new Date(due - Math.max(0, Math.min(leadMs, span / 2)));
}
