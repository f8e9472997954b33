/**
 * The chat outbox's SQL: delivery keys (dedupe of what a platform sends again), message rows
 * (`tollgate.chat_messages`: run messages, approval copies, replies) and the jobs that deliver
 * them or remind approvers. Every function takes the caller's transaction, so a delivery key, the
 * intent it carried (a run, a retry) and the messages it asks for commit together or not at all.
 *
 * Delivery jobs are added through `tollgate.chat_enqueue` (migrations/functions/chat_delivery.sql),
 * never `add_job` directly, so a job key race never loses a delivery. The delivery's own reads and
 * bookkeeping of a row are in chat-delivery.ts.
 */
import { newId } from '../../common/ids.ts';
import { formatPrincipal, type Principal } from '../../common/principals.ts';
import type { Queryable } from '../queryable.ts';

/** A rendering as stored in `body` (src/chat/platform.ts' `Rendered`): the platform's JSON and fallback text. */
export interface StoredRendering {
  text: string;
  body: unknown;
}

export interface ChatMessageRow {
  id: string;
  platform: string;
  /** 'run' (the live run message), 'approval' (a copy of an approval), 'reply' (a fixed message in `body`). */
  kind: string;
  run_id: string | null;
  approval_id: string | null;
  /** Approval copies: 'thread' or the principal of the approver a DM went to. */
  copy: string | null;
  tenant: string | null;
  /** NULL for a DM copy until the platform opens the conversation with `dm_to`. */
  conversation: string | null;
  thread: string | null;
  /** The platform's id of the posted message; NULL until posted. */
  message_id: string | null;
  address: unknown;
  dm_to: string | null;
  visible_to: string | null;
  reminded_at: Date | null;
  body: StoredRendering | null;
  posted_hash: string | null;
  not_before: Date | null;
  attempts: number;
  failures: number;
  last_error: string | null;
  given_up_at: Date | null;
  /** When the row entered the outbox (the outbox lag is measured from it). */
  created_at: Date;
}

/** A place in a chat, as the message rows store it (src/chat/outbox.ts' `Where`). */
export interface MessagePlace {
  platform: string;
  tenant: string | null;
  conversation: string;
  thread: string | null;
  /** Platform-only addressing, stored as the platform gave it. */
  address?: unknown;
}

// ----- delivery keys -----------------------------------------------------------------------------

/**
 * Records that this platform request was handled. False when it already was (a platform retry, a
 * duplicate event id, a re-sent command): the caller does nothing.
 */
export async function claimDeliveryKey(q: Queryable, platform: string, key: string, kind: string): Promise<boolean> {
  const { rows } = await q.query(
    'INSERT INTO tollgate.chat_delivery_keys (platform, key, kind) VALUES ($1, $2, $3) ON CONFLICT (platform, key) DO NOTHING RETURNING key',
    [platform, key, kind],
  );
  return rows.length === 1;
}

/** Forgets delivery keys older than `olderThan` (an interval); platforms re-send for minutes, not days. */
export async function pruneDeliveryKeys(q: Queryable, olderThan: string): Promise<number> {
  const { rowCount } = await q.query('DELETE FROM tollgate.chat_delivery_keys WHERE received_at < now() - $1::interval', [olderThan]);
  return rowCount ?? 0;
}

// ----- message rows ------------------------------------------------------------------------------

/** A fixed reply's row, with its rendering; returns the row's id. */
export async function insertReply(q: Queryable, where: MessagePlace, message: StoredRendering, visibleTo: Principal | null): Promise<string> {
  const id = newId('msg');
  await q.query(
    `INSERT INTO tollgate.chat_messages (id, platform, kind, tenant, conversation, thread, address, body, visible_to)
     VALUES ($1, $2, 'reply', $3, $4, $5, $6, $7, $8)`,
    [
      id,
      where.platform,
      where.tenant,
      where.conversation,
      where.thread,
      where.address === undefined ? null : JSON.stringify(where.address),
      JSON.stringify(message),
      visibleTo ? formatPrincipal(visibleTo) : null,
    ],
  );
  return id;
}

/** Gives a reply a new rendering to bring its message up to; false when there is no such reply (or it was given up). */
export async function redrawReply(q: Queryable, messageId: string, message: StoredRendering): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE tollgate.chat_messages SET body = $2, posted_hash = NULL, updated_at = now() WHERE id = $1 AND kind = 'reply' AND given_up_at IS NULL`,
    [messageId, JSON.stringify(message)],
  );
  return Boolean(rowCount);
}

/** Where the run's (first, live) message is, and its platform id once posted: the thread of its approval copies. */
export interface RunMessagePlace {
  platform: string;
  tenant: string | null;
  conversation: string;
  message_id: string | null;
  thread: string | null;
  address: unknown;
}

export async function readRunMessagePlace(q: Queryable, runId: string): Promise<RunMessagePlace | undefined> {
  const run = await q.query<RunMessagePlace>(
    `SELECT platform, tenant, conversation, message_id, thread, address FROM tollgate.chat_messages
     WHERE run_id = $1 AND kind = 'run' AND given_up_at IS NULL ORDER BY created_at, id LIMIT 1`,
    [runId],
  );
  return run.rows[0];
}

/** An approval's copy in the thread of the run's message (none added when it has one). */
export async function insertThreadCopy(
  q: Queryable,
  copy: { platform: string; runId: string; approvalId: string; tenant: string | null; conversation: string; thread: string; address: unknown },
): Promise<void> {
  await q.query(
    `INSERT INTO tollgate.chat_messages (id, platform, kind, run_id, approval_id, copy, tenant, conversation, thread, address)
       VALUES ($1, $2, 'approval', $3, $4, 'thread', $5, $6, $7, $8)
       ON CONFLICT DO NOTHING`,
    [
      newId('msg'),
      copy.platform,
      copy.runId,
      copy.approvalId,
      copy.tenant,
      copy.conversation,
      copy.thread,
      copy.address === null ? null : JSON.stringify(copy.address),
    ],
  );
}

/** An approval's DM copy to one approver (`principal`, its platform's conversation opened at delivery); none added when it has one. */
export async function insertDmCopy(
  q: Queryable,
  copy: { platform: string; runId: string; approvalId: string; principal: string; tenant: string },
): Promise<void> {
  await q.query(
    `INSERT INTO tollgate.chat_messages (id, platform, kind, run_id, approval_id, copy, tenant, dm_to) VALUES ($1, $2, 'approval', $3, $4, $5, $6, $5)
       ON CONFLICT DO NOTHING`,
    [newId('msg'), copy.platform, copy.runId, copy.approvalId, copy.principal, copy.tenant],
  );
}

/** What a posted message shows: a run's message, or which copy of an approval. */
export interface PostedMessageRef {
  kind: string;
  run_id: string | null;
  approval_id: string | null;
  copy: string | null;
}

/**
 * The row of a message a platform knows by its own id (in `conversation`, preferred when ids
 * repeat across conversations); undefined for a message Tollgate did not post.
 */
export async function findPostedMessage(
  q: Queryable,
  at: { platform: string; conversation: string; messageId: string },
): Promise<PostedMessageRef | undefined> {
  const { rows } = await q.query<PostedMessageRef>(
    `SELECT kind, run_id, approval_id, copy FROM tollgate.chat_messages WHERE platform = $1 AND message_id = $2
     ORDER BY (conversation = $3) DESC, created_at LIMIT 1`,
    [at.platform, at.messageId, at.conversation],
  );
  return rows[0];
}

// ----- jobs --------------------------------------------------------------------------------------

export async function enqueueRunDelivery(q: Queryable, runId: string, runAt?: Date): Promise<void> {
  await q.query(`SELECT tollgate.chat_enqueue(json_build_object('runId', $1::text), 'chat:run:' || $1, $2)`, [runId, runAt ?? null]);
}

export async function enqueueMessageDelivery(q: Queryable, messageId: string, runAt?: Date): Promise<void> {
  await q.query(`SELECT tollgate.chat_enqueue(json_build_object('messageId', $1::text), 'chat:msg:' || $1, $2)`, [messageId, runAt ?? null]);
}

export async function enqueueApprovalDelivery(q: Queryable, approvalId: string, runAt?: Date): Promise<void> {
  await q.query(`SELECT tollgate.chat_enqueue(json_build_object('approvalId', $1::text), 'chat:apr:' || $1, $2)`, [approvalId, runAt ?? null]);
}

/** Re-publishes a person's home page (platforms that have one). */
export async function enqueueHomeDelivery(q: Queryable, who: Pick<Principal, 'platform' | 'tenant' | 'user'>, runAt?: Date): Promise<void> {
  await q.query(
    `SELECT tollgate.chat_enqueue(json_build_object('home', json_build_object('platform', $1::text, 'tenant', $2::text, 'user', $3::text)),
       'chat:home:' || $1 || ':' || $2 || ':' || $3, $4)`,
    [who.platform, who.tenant, who.user, runAt ?? null],
  );
}

export const REMIND_TASK = 'chat-approval-remind';

/**
 * Schedules the deadline reminder (one job per approval; a new deadline moves it). Like
 * `chat_enqueue`, a job key race that adds no job adds one without a key, so the reminder is
 * never lost (a spare one finds the approvers reminded already and does nothing).
 */
export async function scheduleReminder(q: Queryable, approvalId: string, at: Date): Promise<void> {
  const { rows } = await q.query<{ id: string | null }>(
    `SELECT (graphile_worker.add_job($1, json_build_object('approvalId', $2::text), run_at => $3, job_key => 'chat:remind:' || $2,
       job_key_mode => 'replace', max_attempts => 10)).id`,
    [REMIND_TASK, approvalId, at],
  );
  if (rows[0]?.id == null) {
    await q.query(`SELECT graphile_worker.add_job($1, json_build_object('approvalId', $2::text), run_at => $3, max_attempts => 10)`, [
      REMIND_TASK,
      approvalId,
      at,
    ]);
  }
}
