/**
 * The Slack adapter's SQL: delivery dedupe and the outbox (`tollgate.chat_messages`). Every
 * function takes the caller's transaction, so a delivery key, the intent it carried (a run, a
 * retry) and the messages it asks for commit together or not at all.
 */
import { newId } from '../../src/ids.ts';
import type { Queryable } from '../../src/runtime/journal.ts';
import type { SlackMessage } from './blocks.ts';

/** Jobs are added through `tollgate.slack_enqueue` (migrations/000003_slack.sql), never add_job directly. */

/**
 * Records that this Slack delivery was handled. False when it already was: a retry
 * (`X-Slack-Retry-Num`), a duplicate `event_id`, a re-sent command: the caller does nothing.
 */
export async function claimDelivery(q: Queryable, key: string, kind: string): Promise<boolean> {
  const { rows } = await q.query('INSERT INTO tollgate.slack_deliveries (key, kind) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING key', [
    key,
    kind,
  ]);
  return rows.length === 1;
}

export async function linkDeliveryToRun(q: Queryable, key: string, runId: string): Promise<void> {
  await q.query('UPDATE tollgate.slack_deliveries SET run_id = $2 WHERE key = $1', [key, runId]);
}

export interface Where {
  channel: string;
  threadTs: string | null;
}

/**
 * The run's live message, to be posted where the request was made. For a run created in this
 * same transaction, the `run.created` event's trigger (migrations/000003_slack.sql) has already
 * scheduled its delivery (`newRun: true` saves the round trip); a copy added to an existing run
 * schedules one.
 */
export async function addRunMessage(q: Queryable, runId: string, where: Where, opts: { newRun?: boolean } = {}): Promise<void> {
  await q.query(
    `INSERT INTO tollgate.chat_messages (id, kind, run_id, channel, thread_ts) VALUES ($1, 'run', $2, $3, $4)
     ON CONFLICT DO NOTHING`,
    [newId('msg'), runId, where.channel, where.threadTs],
  );
  if (!opts.newRun) await enqueueRunDelivery(q, runId);
}

export async function enqueueRunDelivery(q: Queryable, runId: string, runAt?: Date): Promise<void> {
  await q.query(`SELECT tollgate.slack_enqueue(json_build_object('runId', $1::text), 'slack:run:' || $1, $2)`, [runId, runAt ?? null]);
}

/** A fixed reply (help, status, an explanation) posted once through the outbox. */
export async function addReply(q: Queryable, where: Where, message: SlackMessage): Promise<string> {
  const id = newId('msg');
  await q.query(`INSERT INTO tollgate.chat_messages (id, kind, channel, thread_ts, body) VALUES ($1, 'reply', $2, $3, $4)`, [
    id,
    where.channel,
    where.threadTs,
    JSON.stringify(message),
  ]);
  await enqueueMessageDelivery(q, id);
  return id;
}

export async function enqueueMessageDelivery(q: Queryable, messageId: string, runAt?: Date): Promise<void> {
  await q.query(`SELECT tollgate.slack_enqueue(json_build_object('messageId', $1::text), 'slack:msg:' || $1, $2)`, [messageId, runAt ?? null]);
}

/** Re-publishes a person's App Home (their recent runs). */
export async function enqueueHomeDelivery(q: Queryable, home: { tenant: string; user: string }, runAt?: Date): Promise<void> {
  await q.query(
    `SELECT tollgate.slack_enqueue(json_build_object('home', json_build_object('tenant', $1::text, 'user', $2::text)), 'slack:home:' || $1 || ':' || $2, $3)`,
    [home.tenant, home.user, runAt ?? null],
  );
}

export interface ChatMessageRow {
  id: string;
  kind: string;
  run_id: string | null;
  /** NULL for a DM copy until conversations.open names the channel. */
  channel: string | null;
  approval_id: string | null;
  /** Approval copies: 'thread' or the approver's principal. */
  copy: string | null;
  dm_user: string | null;
  reminded_at: Date | null;
  thread_ts: string | null;
  ts: string | null;
  body: SlackMessage | null;
  posted_hash: string | null;
  not_before: Date | null;
  attempts: number;
  given_up_at: Date | null;
}

export { withTransaction } from '../../src/db/transaction.ts';
