/**
 * What a posted message shows, as a view: the run card of a run message, the approval view and
 * copy of an approval copy. For platforms that answer a click with the clicked message redrawn
 * for the clicker (Teams' `Action.Execute` returns a card), so the answer is the same view the
 * outbox renders, never a twin of it.
 */
import type { Queryable } from '../db/queryable.ts';
import { findPostedMessage } from '../db/queries/chat-outbox.ts';
import { type ApprovalCopy } from '../views/approval-view.ts';
import { loadApprovalCopyView, loadRunMessageView } from '../views/load-run-view.ts';
import type { ChatView } from './platform.ts';

/** An approval copy row's `copy` column as the view's `ApprovalCopy`. */
export function copyOf(copy: string | null): ApprovalCopy {
  return copy && copy !== 'thread' ? { kind: 'dm', principal: copy } : { kind: 'thread' };
}

export async function runMessageView(q: Queryable, runId: string): Promise<ChatView | undefined> {
  const run = await loadRunMessageView(q, runId);
  return run ? { kind: 'run', run } : undefined;
}

export async function approvalMessageView(q: Queryable, approvalId: string, copy: ApprovalCopy = { kind: 'thread' }): Promise<ChatView | undefined> {
  const approval = await loadApprovalCopyView(q, approvalId);
  return approval ? { kind: 'approval', approval, copy } : undefined;
}

/**
 * The view of the message a platform knows by its own id (in `conversation`, preferred when ids
 * repeat across conversations); undefined for a message Tollgate did not post or a fixed reply.
 */
export async function postedMessageView(q: Queryable, at: { platform: string; conversation: string; messageId: string }): Promise<ChatView | undefined> {
  const row = await findPostedMessage(q, at);
  if (row?.kind === 'run' && row.run_id) return runMessageView(q, row.run_id);
  if (row?.kind === 'approval' && row.approval_id) return approvalMessageView(q, row.approval_id, copyOf(row.copy));
  return undefined;
}
