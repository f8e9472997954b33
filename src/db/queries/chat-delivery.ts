/**
 * The SQL of the outbox's delivery (src/chat/deliver.ts): it locks the message rows it brings up
 * to date (`FOR UPDATE`, and a transaction lock per approval) before reading the state they show,
 * and records on each row what the platform did: posted (its id, the rendering's hash), a failure
 * and its wait (`not_before`, `failures`), or that it gave up on the row for good.
 */
import type { Queryable } from '../queryable.ts';
import type { ChatMessageRow } from './chat-outbox.ts';

// ----- locking reads -----------------------------------------------------------------------------

/** The live messages of a run, locked. */
export async function lockRunMessages(q: Queryable, runId: string): Promise<ChatMessageRow[]> {
  const { rows } = await q.query<ChatMessageRow>(
    `SELECT * FROM tollgate.chat_messages WHERE run_id = $1 AND kind = 'run' AND given_up_at IS NULL ORDER BY created_at, id FOR UPDATE`,
    [runId],
  );
  return rows;
}

/** One message row, locked. */
export async function lockMessage(q: Queryable, messageId: string): Promise<ChatMessageRow | undefined> {
  const { rows } = await q.query<ChatMessageRow>(`SELECT * FROM tollgate.chat_messages WHERE id = $1 FOR UPDATE`, [messageId]);
  return rows[0];
}

/**
 * Serialises the deliveries of one approval for the rest of the transaction: taken before the
 * approval is read, so a delivery that waited behind another reads the newer state.
 */
export async function lockApprovalDelivery(q: Queryable, approvalId: string): Promise<void> {
  await q.query(`SELECT pg_advisory_xact_lock(hashtextextended('chat:apr:' || $1, 0))`, [approvalId]);
}

/** The copies of an approval (thread and DMs), locked. */
export async function lockApprovalCopies(q: Queryable, approvalId: string): Promise<ChatMessageRow[]> {
  const { rows } = await q.query<ChatMessageRow>(
    `SELECT * FROM tollgate.chat_messages WHERE approval_id = $1 AND kind = 'approval' AND given_up_at IS NULL ORDER BY created_at, id FOR UPDATE`,
    [approvalId],
  );
  return rows;
}

/** The DM copies of an approval whose approver was not reminded yet, locked. */
export async function lockUnremindedDmCopies(q: Queryable, approvalId: string): Promise<ChatMessageRow[]> {
  const { rows } = await q.query<ChatMessageRow>(
    `SELECT * FROM tollgate.chat_messages WHERE approval_id = $1 AND kind = 'approval' AND dm_to IS NOT NULL AND reminded_at IS NULL
             AND given_up_at IS NULL ORDER BY created_at, id FOR UPDATE`,
    [approvalId],
  );
  return rows;
}

/** Whether the run was started from a chat (only those get chat copies of their approvals). */
export async function isChatRun(q: Queryable, runId: string): Promise<boolean> {
  const chat = await q.query(`SELECT 1 FROM tollgate.chat_runs WHERE run_id = $1`, [runId]);
  return chat.rows.length > 0;
}

/** The ids of a run's pending approvals (their thread copies wait for the run message's id). */
export async function pendingApprovalIdsOfRun(q: Queryable, runId: string): Promise<string[]> {
  const pending = await q.query<{ id: string }>(`SELECT id FROM tollgate.approvals WHERE run_id = $1 AND status = 'pending'`, [runId]);
  return pending.rows.map((p) => p.id);
}

// ----- what the platform did ---------------------------------------------------------------------

/** A DM copy's conversation, once the platform opened it. */
export async function setDmConversation(q: Queryable, messageId: string, conversation: string, address: unknown): Promise<void> {
  await q.query(`UPDATE tollgate.chat_messages SET conversation = $2, address = $3, updated_at = now() WHERE id = $1`, [
    messageId,
    conversation,
    address === undefined ? null : JSON.stringify(address),
  ]);
}

/** Posted: the platform's id of the message (and where it says it is), the rendering's hash; failures forgotten. */
export async function markPosted(
  q: Queryable,
  messageId: string,
  posted: { messageId: string | null; conversation?: string; address?: unknown },
  hash: string,
): Promise<void> {
  await q.query(
    `UPDATE tollgate.chat_messages SET message_id = $2, conversation = coalesce($3, conversation), address = coalesce($4, address), posted_hash = $5,
           attempts = attempts + 1, failures = 0, not_before = NULL, last_error = NULL, updated_at = now() WHERE id = $1`,
    [messageId, posted.messageId, posted.conversation ?? null, posted.address === undefined ? null : JSON.stringify(posted.address), hash],
  );
}

/** Updated to the rendering with this hash; failures forgotten. */
export async function markUpdated(q: Queryable, messageId: string, hash: string): Promise<void> {
  await q.query(
    `UPDATE tollgate.chat_messages SET posted_hash = $2, attempts = attempts + 1, failures = 0, not_before = NULL, last_error = NULL, updated_at = now() WHERE id = $1`,
    [messageId, hash],
  );
}

/** The platform refused the message for good: given up, with its reason. */
export async function markRefused(q: Queryable, messageId: string, error: string): Promise<void> {
  await q.query(`UPDATE tollgate.chat_messages SET attempts = attempts + 1, last_error = $2, given_up_at = now(), updated_at = now() WHERE id = $1`, [
    messageId,
    error,
  ]);
}

/** Given up after `failures` transient failures in a row. */
export async function markGaveUp(q: Queryable, messageId: string, failures: number, error: string): Promise<void> {
  await q.query(
    `UPDATE tollgate.chat_messages SET attempts = attempts + 1, failures = $2, last_error = $3, given_up_at = now(), updated_at = now() WHERE id = $1`,
    [messageId, failures, error],
  );
}

/** Holds these rows back until `at` (a delivery scheduled earlier moves itself there). */
export async function deferMessages(q: Queryable, messageIds: string[], at: Date): Promise<void> {
  await q.query(`UPDATE tollgate.chat_messages SET not_before = $2, updated_at = now() WHERE id = ANY($1)`, [messageIds, at]);
}

/** One more transient failure of this row, with its error. */
export async function recordFailure(q: Queryable, messageId: string, failures: number, error: string): Promise<void> {
  await q.query(`UPDATE tollgate.chat_messages SET attempts = attempts + 1, failures = $2, last_error = $3 WHERE id = $1`, [messageId, failures, error]);
}

/** The approver of this DM copy was reminded (each is reminded once). */
export async function markReminded(q: Queryable, messageId: string): Promise<void> {
  await q.query('UPDATE tollgate.chat_messages SET reminded_at = now() WHERE id = $1', [messageId]);
}

/**
 * Forgets what a posted run message or approval copy shows (its rendering's hash), so that its
 * next delivery updates it even if the current rendering hashes the same: a click proved that
 * the person saw an older copy (a stale button). The caller enqueues the delivery.
 */
export async function forgetPostedRendering(q: Queryable, at: { platform: string; conversation: string; messageId: string }): Promise<void> {
  await q.query(
    `UPDATE tollgate.chat_messages SET posted_hash = NULL
      WHERE platform = $1 AND message_id = $2 AND conversation = $3 AND kind IN ('run', 'approval')`,
    [at.platform, at.messageId, at.conversation],
  );
}
