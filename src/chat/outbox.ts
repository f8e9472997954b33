/**
 * The chat outbox's SQL: delivery keys (dedupe of what a platform sends again) and message rows
 * (`tollgate.chat_messages`) with the jobs that deliver them. Every function takes the caller's
 * transaction, so a delivery key, the intent it carried (a run, a retry) and the messages it asks
 * for commit together or not at all.
 *
 * Jobs are added through `tollgate.chat_enqueue` (migrations/functions/chat_delivery.sql), never
 * `add_job` directly, so a job key race never loses a delivery.
 */
import { z } from 'zod';
import { newId } from '../common/ids.ts';
import { formatPrincipal, type Principal } from '../common/principals.ts';
import type { Queryable } from '../db/queryable.ts';
import type { Rendered } from './platform.ts';

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

/** A place in a chat: a platform's conversation (and thread) in a tenant. */
export interface Where {
  platform: string;
  tenant: string | null;
  conversation: string;
  thread: string | null;
  /** Platform-only addressing, stored as the platform gave it. */
  address?: unknown;
  /** The conversation is a direct one with the person addressed: no need to hide a message from others. */
  direct?: boolean;
}

/** A stored `Where` (a deferred click's job payload), read back. */
export const whereSchema = z.object({
  platform: z.string(),
  tenant: z.string().nullable(),
  conversation: z.string(),
  thread: z.string().nullable(),
  address: z.unknown().optional(),
  direct: z.boolean().optional(),
});

/**
 * The run's live message, to be posted where the request was made. For a run created in this
 * same transaction, the `run.created` event's trigger has already scheduled its delivery
 * (`newRun: true` saves the round trip); a copy added to an existing run schedules one.
 */
export async function addRunMessage(q: Queryable, runId: string, where: Where, opts: { newRun?: boolean } = {}): Promise<void> {
  await q.query(
    `INSERT INTO tollgate.chat_messages (id, platform, kind, run_id, tenant, conversation, thread, address) VALUES ($1, $2, 'run', $3, $4, $5, $6, $7)
     ON CONFLICT DO NOTHING`,
    [newId('msg'), where.platform, runId, where.tenant, where.conversation, where.thread, where.address === undefined ? null : JSON.stringify(where.address)],
  );
  if (!opts.newRun) await enqueueRunDelivery(q, runId);
}

/**
 * A fixed reply (help, status, an explanation), already rendered by its platform, posted once
 * through the outbox. With `visibleTo`, only that person sees it (where the platform can do that).
 */
export async function addReply(q: Queryable, where: Where, message: Rendered, opts: { visibleTo?: Principal | null } = {}): Promise<string> {
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
      opts.visibleTo ? formatPrincipal(opts.visibleTo) : null,
    ],
  );
  await enqueueMessageDelivery(q, id);
  return id;
}

/**
 * Draws a posted reply again with `message` (a proposal once confirmed): the delivery then
 * updates the posted message in place, or posts it if it was not posted yet.
 */
export async function replaceReply(q: Queryable, messageId: string, message: Rendered): Promise<void> {
  const { rowCount } = await q.query(
    `UPDATE tollgate.chat_messages SET body = $2, posted_hash = NULL, updated_at = now() WHERE id = $1 AND kind = 'reply' AND given_up_at IS NULL`,
    [messageId, JSON.stringify(message)],
  );
  if (rowCount) await enqueueMessageDelivery(q, messageId);
}

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
  body: Rendered | null;
  posted_hash: string | null;
  not_before: Date | null;
  attempts: number;
  failures: number;
  last_error: string | null;
  given_up_at: Date | null;
  /** When the row entered the outbox (the outbox lag is measured from it). */
  created_at: Date;
}
