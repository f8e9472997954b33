/**
 * One message row brought up to a rendering on its platform: a DM's conversation opened first if
 * need be, then posted the first time and updated after; nothing called when the row already
 * shows that rendering (its hash). Failures are thrown to the caller (rows.ts), which classifies them.
 */
import { createHash } from 'node:crypto';
import { parsePrincipal, type Principal } from '../../common/principals.ts';
import type { Queryable } from '../../db/queryable.ts';
import type { ChatMessageRow } from '../../db/queries/chat-outbox.ts';
import { markPosted, markUpdated, setDmConversation } from '../../db/queries/chat-delivery.ts';
import { observeOutboxLag } from '../../telemetry/metrics.ts';
import type { ChatPlatform, Destination, Rendered } from '../platform.ts';
import type { DeliveryOutcome } from './context.ts';

export function hashRendering(m: Rendered): string {
  return createHash('sha256').update(JSON.stringify(m)).digest('hex');
}

function destination(row: ChatMessageRow): Destination {
  let visibleTo: Principal | null = null;
  if (row.visible_to) {
    try {
      visibleTo = parsePrincipal(row.visible_to);
    } catch {
      visibleTo = null;
    }
  }
  return { tenant: row.tenant, conversation: row.conversation ?? '', thread: row.thread, address: row.address, visibleTo };
}

/** Posts or updates one message row to show `message`; returns what it did. */
export async function bring(q: Queryable, platform: ChatPlatform, row: ChatMessageRow, message: Rendered): Promise<DeliveryOutcome> {
  const hash = hashRendering(message);
  if (row.posted_hash === hash && (row.message_id || row.kind === 'reply')) return 'unchanged';
  if (!row.conversation && row.dm_to) {
    // A DM copy: open (or find) the direct conversation with the approver first.
    const dm = await platform.openDm(parsePrincipal(row.dm_to));
    await setDmConversation(q, row.id, dm.conversation, dm.address);
    row.conversation = dm.conversation;
    row.address = dm.address ?? null;
  }
  if (!row.conversation) return 'nothing';
  if (!row.message_id) {
    const posted = await platform.post(destination(row), message);
    await markPosted(q, row.id, posted, hash);
    row.message_id = posted.messageId;
    observeOutboxLag(row.platform, row.kind, row.created_at);
    return 'posted';
  }
  await platform.update({ ...destination(row), messageId: row.message_id }, message);
  await markUpdated(q, row.id, hash);
  return 'updated';
}
