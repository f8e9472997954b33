/**
 * A run's live messages and fixed replies, delivered. A delivery locks the rows before it reads
 * the state they show, so one that waited behind another never posts older state over newer.
 */
import { withTransaction } from '../../db/transaction.ts';
import { enqueueApprovalDelivery, enqueueMessageDelivery, enqueueRunDelivery } from '../../db/queries/chat-outbox.ts';
import { lockMessage, lockRunMessages, pendingApprovalIdsOfRun } from '../../db/queries/chat-delivery.ts';
import { loadRunMessageView } from '../../views/load-run-view.ts';
import { platformOf, type DeliveryContext, type DeliveryOutcome } from './context.ts';
import { deliverRows } from './rows.ts';

export function deliverRun(ctx: DeliveryContext, runId: string): Promise<DeliveryOutcome> {
  return withTransaction(ctx.pool, async (q) => {
    const rows = await lockRunMessages(q, runId);
    if (rows.length === 0) return 'nothing';
    const view = await loadRunMessageView(q, runId);
    if (!view) return 'nothing';
    const out = await deliverRows(
      ctx,
      q,
      rows,
      (row) => platformOf(ctx, row).render({ kind: 'run', run: view }),
      (at) => enqueueRunDelivery(q, runId, at),
    );
    if (out === 'posted') {
      // The run message now has an id: pending approvals can get their copy in its thread.
      for (const id of await pendingApprovalIdsOfRun(q, runId)) await enqueueApprovalDelivery(q, id);
    }
    return out;
  });
}

export function deliverMessage(ctx: DeliveryContext, messageId: string): Promise<DeliveryOutcome> {
  return withTransaction(ctx.pool, async (q) => {
    const row = await lockMessage(q, messageId);
    if (!row?.body || row.posted_hash || row.given_up_at) return 'nothing';
    return deliverRows(
      ctx,
      q,
      [row],
      (r) => r.body ?? undefined,
      (at) => enqueueMessageDelivery(q, messageId, at),
    );
  });
}
