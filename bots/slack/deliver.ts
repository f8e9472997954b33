/**
 * The outbox's delivery: what the `slack-deliver` job does. It renders the current state and
 * brings Slack up to it, so it is idempotent and order-free: however many events happened since
 * the last delivery, one call (chat.postMessage the first time, chat.update after) makes the
 * message show the latest state, and a delivery that finds nothing changed calls nothing.
 *
 * General notes
 * - The message rows are locked (`FOR UPDATE`) for the length of a delivery, so two deliveries of
 *   the same message (Graphile starts a new job when one with the same key is already running)
 *   cannot both post it.
 * - 429: the Web API client is built with `rejectRateLimitedCalls`, so it throws with Slack's
 *   `Retry-After`; the message's `not_before` is set and the job re-scheduled then. A delivery
 *   scheduled earlier (a new event) sees `not_before` and moves itself to that time. The run is
 *   never blocked: it only ever enqueues a job.
 * - Approvals (approvals.ts): each copy of an approval (the run message's thread, a DM to each
 *   Slack approver) is a row of kind 'approval', delivered together by `deliverApproval` from
 *   the approval's current state; a DM's channel comes from conversations.open on first delivery.
 *   The same delivery refreshes the approvers' App Home and schedules the deadline reminder.
 * - Other failures (Slack down, 5xx) throw, and Graphile Worker retries the job with its
 *   exponential backoff; the message catches up on the first success.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { webApi } from '@slack/bolt';
import type { Logger } from '../../src/log.ts';
import type { Queryable } from '../../src/runtime/journal.ts';
import { getApproval, listPendingApprovals } from '../../src/approvals/index.ts';
import { loadRunView, listRunsRequestedBy, type ApprovalView } from '../../src/views/run-view.ts';
import {
  enqueueApprovalDelivery,
  ensureApprovalCopies,
  mayStillDecide,
  pendingApprovalBlocks,
  reminderTime,
  renderApprovalMessage,
  renderReminder,
  scheduleReminder,
  slackApprovers,
} from './approvals.ts';
import { LIMITS, renderRunList, renderRunMessage, type SlackMessage } from './blocks.ts';
import {
  addReply,
  enqueueHomeDelivery,
  enqueueMessageDelivery,
  enqueueRunDelivery,
  withTransaction,
  type ChatMessageRow,
} from './store.ts';

type WebClient = InstanceType<typeof webApi.WebClient>;

export type DeliveryOutcome = 'posted' | 'updated' | 'unchanged' | 'deferred' | 'nothing';

export interface SlackDeliverer {
  deliverRun(runId: string): Promise<DeliveryOutcome>;
  deliverMessage(messageId: string): Promise<DeliveryOutcome>;
  deliverHome(home: { tenant: string; user: string }): Promise<DeliveryOutcome>;
  /** Brings every copy of an approval (thread, DMs) up to date, creating them while it is pending. */
  deliverApproval(approvalId: string): Promise<DeliveryOutcome>;
  /** The deadline is near: reminds the approvers who have not decided (a reply under their DM). */
  remindApproval(approvalId: string): Promise<DeliveryOutcome>;
}

export function hashMessage(m: SlackMessage): string {
  return createHash('sha256').update(JSON.stringify(m)).digest('hex');
}

function retryAfterSeconds(e: unknown): number | undefined {
  const err = e as { code?: string; retryAfter?: unknown };
  if (err.code === webApi.ErrorCode.RateLimitedError && typeof err.retryAfter === 'number') return err.retryAfter;
  return undefined;
}

/** Slack errors (`ok: false`) that no retry can fix; transient ones are retried by the job. */
const TRANSIENT = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout', 'ratelimited']);
function permanentError(e: unknown): string | undefined {
  const err = e as { code?: string; data?: { error?: string } };
  if (err.code !== webApi.ErrorCode.PlatformError) return undefined;
  const code = err.data?.error ?? 'unknown_error';
  return TRANSIENT.has(code) ? undefined : code;
}

export interface DelivererOptions {
  pool: pg.Pool;
  client: WebClient;
  log: Logger;
  /**
   * The run's approvals, for its message (RunView.approvals). The approvals engine plugs in
   * here; until then runs have none.
   */
  loadApprovals?: (q: Queryable, runId: string) => Promise<ApprovalView[]>;
  /** How long before an approval's deadline its approvers are reminded (at most half-way). Default 1 h. */
  reminderLeadMs?: number;
}

export function createDeliverer(opts: DelivererOptions): SlackDeliverer {
  const { pool, client } = opts;
  const log = opts.log.child({ component: 'slack-deliver' });

  /** Posts or updates one message row to show `message`; returns what it did. */
  async function bring(q: pg.PoolClient, row: ChatMessageRow, message: SlackMessage): Promise<DeliveryOutcome> {
    const hash = hashMessage(message);
    if (row.ts && row.posted_hash === hash) return 'unchanged';
    if (!row.channel && row.dm_user) {
      // A DM copy: open (or find) the direct message with the approver first.
      const open = await client.conversations.open({ users: row.dm_user });
      const channel = open.channel?.id;
      if (!channel) throw new Error(`conversations.open with ${row.dm_user} returned no channel`);
      await q.query(`UPDATE tollgate.chat_messages SET channel = $2, updated_at = now() WHERE id = $1`, [row.id, channel]);
      row.channel = channel;
    }
    if (!row.channel) return 'nothing';
    if (!row.ts) {
      const res = await client.chat.postMessage({
        channel: row.channel,
        text: message.text,
        blocks: message.blocks,
        ...(row.thread_ts ? { thread_ts: row.thread_ts } : {}),
        unfurl_links: false,
      });
      await q.query(
        `UPDATE tollgate.chat_messages SET ts = $2, channel = coalesce($3, channel), posted_hash = $4, attempts = attempts + 1, last_error = NULL, updated_at = now() WHERE id = $1`,
        [row.id, res.ts, res.channel ?? null, hash],
      );
      return 'posted';
    }
    await client.chat.update({ channel: row.channel, ts: row.ts, text: message.text, blocks: message.blocks });
    await q.query(`UPDATE tollgate.chat_messages SET posted_hash = $2, attempts = attempts + 1, last_error = NULL, updated_at = now() WHERE id = $1`, [
      row.id,
      hash,
    ]);
    return 'updated';
  }

  /**
   * Delivers `rows` with `render()`; on 429 records `not_before` and re-schedules with
   * `reschedule(at)`. Throws any other failure (after recording it) for the job to be retried.
   */
  async function deliverRows(
    q: pg.PoolClient,
    rows: ChatMessageRow[],
    render: (row: ChatMessageRow) => SlackMessage | undefined,
    reschedule: (at: Date) => Promise<void>,
  ): Promise<DeliveryOutcome> {
    const notBefore = rows.reduce<Date | null>((max, r) => (r.not_before && (!max || r.not_before > max) ? r.not_before : max), null);
    if (notBefore && notBefore.getTime() > Date.now()) {
      await reschedule(notBefore);
      return 'deferred';
    }
    let outcome: DeliveryOutcome = 'unchanged';
    for (const row of rows) {
      const message = render(row);
      if (!message) continue;
      try {
        const done = await bring(q, row, message);
        if (done !== 'unchanged') outcome = done;
      } catch (e) {
        const retryAfter = retryAfterSeconds(e);
        if (retryAfter !== undefined) {
          const at = new Date(Date.now() + Math.max(1, retryAfter) * 1000);
          await q.query(`UPDATE tollgate.chat_messages SET not_before = $2, last_error = $3, updated_at = now() WHERE id = ANY($1)`, [
            rows.map((r) => r.id),
            at,
            `rate limited; Retry-After ${retryAfter} s`,
          ]);
          await reschedule(at);
          log.warn({ messageId: row.id, runId: row.run_id, retryAfter }, 'Slack rate-limited a delivery; it will be retried after Retry-After');
          return 'deferred';
        }
        await q.query(`UPDATE tollgate.chat_messages SET attempts = attempts + 1, last_error = $2, updated_at = now() WHERE id = $1`, [
          row.id,
          (e as Error).message?.slice(0, 1000) ?? String(e),
        ]);
        const permanent = permanentError(e);
        if (permanent) {
          await q.query(`UPDATE tollgate.chat_messages SET given_up_at = now() WHERE id = $1`, [row.id]);
          // Retrying cannot help (the bot is not in the channel, the message was deleted …):
          // record it on the row and leave the other copies to be delivered.
          log.warn({ messageId: row.id, runId: row.run_id, channel: row.channel, error: permanent }, 'Slack refused a message for good; it will not be retried');
          continue;
        }
        // Keep what was recorded (a ts from an earlier row) before the job is retried.
        throw Object.assign(e as Error, { recorded: true });
      }
    }
    return outcome;
  }

  /** Commits what was recorded even when a call failed, then rethrows for Graphile to retry. */
  async function inTransaction(fn: (q: pg.PoolClient) => Promise<DeliveryOutcome>): Promise<DeliveryOutcome> {
    let failure: unknown;
    const out = await withTransaction(pool, async (q) => {
      try {
        return await fn(q);
      } catch (e) {
        if ((e as { recorded?: boolean }).recorded) {
          failure = e;
          return 'nothing' as const;
        }
        throw e;
      }
    });
    if (failure) throw failure;
    return out;
  }

  return {
    deliverRun: (runId) =>
      inTransaction(async (q) => {
        const { rows } = await q.query<ChatMessageRow>(
          `SELECT * FROM tollgate.chat_messages WHERE run_id = $1 AND kind = 'run' AND given_up_at IS NULL ORDER BY created_at, id FOR UPDATE`,
          [runId],
        );
        if (rows.length === 0) return 'nothing';
        const view = await loadRunView(q, runId, opts.loadApprovals ? await opts.loadApprovals(q, runId) : []);
        if (!view) return 'nothing';
        const message = renderRunMessage(view);
        const out = await deliverRows(q, rows, () => message, (at) => enqueueRunDelivery(q, runId, at));
        if (out === 'posted') {
          // The run message now has a ts: pending approvals can get their copy in its thread.
          const pending = await q.query<{ id: string }>(`SELECT id FROM tollgate.approvals WHERE run_id = $1 AND status = 'pending'`, [runId]);
          for (const p of pending.rows) await enqueueApprovalDelivery(q, p.id);
        }
        return out;
      }),

    deliverMessage: (messageId) =>
      inTransaction(async (q) => {
        const { rows } = await q.query<ChatMessageRow>(`SELECT * FROM tollgate.chat_messages WHERE id = $1 FOR UPDATE`, [messageId]);
        const row = rows[0];
        if (!row?.body || row.ts || row.given_up_at) return 'nothing';
        return deliverRows(q, [row], (r) => r.body ?? undefined, (at) => enqueueMessageDelivery(q, messageId, at));
      }),

    deliverApproval: (approvalId) =>
      inTransaction(async (q) => {
        const a = await getApproval(q, approvalId);
        if (!a) return 'nothing';
        const origin = await q.query<{ platform: string | null }>(`SELECT origin->>'platform' AS platform FROM tollgate.runs WHERE id = $1`, [a.runId]);
        if (origin.rows[0]?.platform !== 'slack') return 'nothing';
        if (a.status === 'pending') await ensureApprovalCopies(q, a);
        const { rows } = await q.query<ChatMessageRow>(
          `SELECT * FROM tollgate.chat_messages WHERE approval_id = $1 AND kind = 'approval' AND given_up_at IS NULL ORDER BY created_at, id FOR UPDATE`,
          [approvalId],
        );
        // Each approver's App Home lists what waits for them: refresh it on every change.
        for (const p of slackApprovers(a)) await enqueueHomeDelivery(q, { tenant: p.tenant, user: p.user });
        if (a.status === 'pending' && rows.some((r) => r.dm_user && !r.reminded_at)) {
          const at = reminderTime(a, opts.reminderLeadMs ?? 3_600_000);
          if (at) await scheduleReminder(q, approvalId, at);
        }
        if (rows.length === 0) return 'nothing';
        return deliverRows(q, rows, (row) => renderApprovalMessage(a, row.copy ?? 'thread'), (at) => enqueueApprovalDelivery(q, approvalId, at));
      }),

    remindApproval: (approvalId) =>
      inTransaction(async (q) => {
        const a = await getApproval(q, approvalId);
        if (!a || a.status !== 'pending') return 'nothing';
        const { rows } = await q.query<ChatMessageRow>(
          `SELECT * FROM tollgate.chat_messages WHERE approval_id = $1 AND kind = 'approval' AND dm_user IS NOT NULL AND reminded_at IS NULL
             AND given_up_at IS NULL ORDER BY created_at, id FOR UPDATE`,
          [approvalId],
        );
        let outcome: DeliveryOutcome = 'nothing';
        let waiting = 0;
        for (const row of rows) {
          if (!row.copy || !mayStillDecide(a, row.copy)) continue;
          if (!row.channel || !row.ts) {
            waiting++; // the DM itself is not delivered yet (Slack down): remind once it is
            continue;
          }
          await addReply(q, { channel: row.channel, threadTs: row.ts }, renderReminder(a));
          await q.query('UPDATE tollgate.chat_messages SET reminded_at = now() WHERE id = $1', [row.id]);
          outcome = 'posted';
        }
        if (waiting > 0) await scheduleReminder(q, approvalId, new Date(Date.now() + 30_000));
        return outcome;
      }),

    deliverHome: async (home) => {
      const runs = await listRunsRequestedBy(pool, { platform: 'slack', ...home }, 10);
      const list = renderRunList(runs, 'Your recent runs');
      const pending = await listPendingApprovals(pool, { platform: 'slack', tenant: home.tenant, user: home.user });
      const approvals = pendingApprovalBlocks(pending, LIMITS.blocksPerView - list.blocks.length - 2);
      try {
        await client.views.publish({
          user_id: home.user,
          view: {
            type: 'home',
            blocks: [
              ...approvals,
              ...list.blocks,
              { type: 'context', elements: [{ type: 'mrkdwn', text: 'Start one with `/tollgate run <workflow> key=value …`; `/tollgate help` lists workflows.' }] },
            ],
          },
        });
        return 'updated';
      } catch (e) {
        const retryAfter = retryAfterSeconds(e);
        if (retryAfter === undefined) throw e;
        await enqueueHomeDelivery(pool, home, new Date(Date.now() + Math.max(1, retryAfter) * 1000));
        return 'deferred';
      }
    },
  };
}
