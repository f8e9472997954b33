/**
 * An approval's copies (the thread copy and each approver's DM, src/chat/copies.ts), delivered,
 * and the reminder of the approvers who have not decided as its deadline nears.
 */
import { getApproval } from '../../approvals/index.ts';
import type { ApprovalRecord } from '../../approvals/types.ts';
import type { Queryable } from '../../db/queryable.ts';
import { withTransaction } from '../../db/transaction.ts';
import { enqueueApprovalDelivery, enqueueHomeDelivery, scheduleReminder } from '../../db/queries/chat-outbox.ts';
import { readApprovalRunRevision } from '../../db/queries/run-views.ts';
import { atRevision } from '../../views/load-run-view.ts';
import { isChatRun, lockApprovalCopies, lockApprovalDelivery, lockUnremindedDmCopies, markReminded } from '../../db/queries/chat-delivery.ts';
import { toApprovalView } from '../../views/approval-view.ts';
import { mayDecide } from '../../approvals/eligibility.ts';
import { dmApprovers, ensureApprovalCopies, reminderTime } from '../copies.ts';
import { copyOf } from '../message-views.ts';
import { addReply } from '../outbox.ts';
import { platformOf, type DeliveryContext, type DeliveryOutcome } from './context.ts';
import { deliverRows } from './rows.ts';

/** The home pages of an approval's approvers, on platforms that have one. */
async function refreshHomes(ctx: DeliveryContext, q: Queryable, a: ApprovalRecord): Promise<void> {
  for (const p of dmApprovers(a, ctx.withHome)) await enqueueHomeDelivery(q, p);
}

/** Brings every copy of an approval (thread, DMs) up to date, creating them while it is pending. */
export function deliverApproval(ctx: DeliveryContext, approvalId: string): Promise<DeliveryOutcome> {
  return withTransaction(ctx.pool, async (q) => {
    // Lock, then read: a delivery that waited here behind another must not post the state it
    // would have read before waiting.
    await lockApprovalDelivery(q, approvalId);
    // The approval with the run's revision it is at (the copies' buttons carry it).
    const { state: a, revision } = await atRevision(
      () => readApprovalRunRevision(q, approvalId),
      () => getApproval(q, approvalId),
    );
    if (!a) return 'nothing';
    if (!(await isChatRun(q, a.runId))) return 'nothing';
    if (a.status === 'pending') await ensureApprovalCopies(q, a, ctx.names);
    const rows = await lockApprovalCopies(q, approvalId);
    if (a.status === 'pending' && rows.some((r) => r.dm_to && !r.reminded_at)) {
      const at = reminderTime(a, ctx.reminderLeadMs);
      if (at) await scheduleReminder(q, approvalId, at);
    }
    const view = { ...toApprovalView(a), revision };
    const outcome =
      rows.length === 0
        ? 'nothing'
        : await deliverRows(
            ctx,
            q,
            rows,
            (row) => platformOf(ctx, row).render({ kind: 'approval', approval: view, copy: copyOf(row.copy) }),
            (at) => enqueueApprovalDelivery(q, approvalId, at),
          );
    // Each approver's home page lists what waits for them: refresh it on every change. Last, just
    // before the commit: scheduling locks the approver's one home job until then, and one
    // approver's burst of approvals queued on that lock behind each other's platform calls (21 ms
    // a delivery in the Slack bench's 200 Approve clicks).
    await refreshHomes(ctx, q, a);
    return outcome;
  });
}

/** The deadline is near: reminds the approvers who have not decided (a reply under their DM). */
export function remindApproval(ctx: DeliveryContext, approvalId: string): Promise<DeliveryOutcome> {
  return withTransaction(ctx.pool, async (q) => {
    const a = await getApproval(q, approvalId);
    if (!a || a.status !== 'pending') return 'nothing';
    const rows = await lockUnremindedDmCopies(q, approvalId);
    let outcome: DeliveryOutcome = 'nothing';
    let waiting = 0;
    const view = toApprovalView(a);
    for (const row of rows) {
      if (!row.copy || !mayDecide(a, row.copy)) continue;
      if (!row.conversation || !row.message_id) {
        waiting++; // the DM itself is not delivered yet (the platform is down): remind once it is
        continue;
      }
      const platform = platformOf(ctx, row);
      await addReply(
        q,
        { platform: row.platform, tenant: row.tenant, conversation: row.conversation, thread: row.message_id, address: row.address ?? undefined },
        platform.render({ kind: 'reminder', approval: view }),
      );
      await markReminded(q, row.id);
      outcome = 'posted';
    }
    if (waiting > 0) await scheduleReminder(q, approvalId, new Date(Date.now() + 30_000));
    return outcome;
  });
}
