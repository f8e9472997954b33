/**
 * The outbox's delivery: what the `chat-deliver` job does, for every platform. It renders the
 * current state and brings each copy up to it through the copy's own platform, so it is
 * idempotent and order-free: however many events happened since the last delivery, one call
 * (post the first time, update after) makes the message show the latest state, and a delivery
 * that finds nothing changed calls nothing.
 *
 * General notes
 * - A delivery locks before it reads. The message rows are locked (`FOR UPDATE`), and an
 *   approval's deliveries also take a transaction lock on the approval id before reading the
 *   approval, so a delivery that waited behind another can never post older state over newer.
 * - Failures never fail the job. The platform classifies each error (`ChatPlatform.classify`):
 *   retry after `Retry-After`, retry with this module's backoff, or give up on that copy for good.
 *   The wait is recorded on the rows (`not_before`, `failures`) and the job re-schedules itself
 *   under its own key, so a message has at most one pending delivery job however long the outage.
 *   A delivery scheduled earlier (a new event) sees `not_before` and moves itself to that time.
 * - The run is never blocked: it only ever enqueues a job (the events trigger).
 * - A row whose platform is not configured in this process is left alone and its job retried
 *   later (the message catches up once that platform is configured).
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { getApproval, listPendingApprovals } from '../approvals/index.ts';
import type { ApprovalRecord } from '../approvals/types.ts';
import { withTransaction } from '../db/transaction.ts';
import type { Logger } from '../common/log.ts';
import { parsePrincipal, type Principal } from '../common/principals.ts';
import { listRunsRequestedBy } from '../views/run-view.ts';
import { loadRunMessageView, toApprovalView } from '../views/approval-view.ts';
import { copyOf } from './message-views.ts';
import { dmApprovers, ensureApprovalCopies, mayStillDecide, reminderTime, scheduleReminder } from './copies.ts';
import {
  addReply,
  enqueueApprovalDelivery,
  enqueueHomeDelivery,
  enqueueMessageDelivery,
  enqueueRunDelivery,
  type ChatMessageRow,
} from './outbox.ts';
import type { ChatPlatform, Destination, Rendered } from './platform.ts';
import { toRunSummary } from './summaries.ts';
import { traceChatDelivery } from '../telemetry/tracing-spans.ts';
import { countChatApiError, observeOutboxLag } from '../telemetry/metrics.ts';

export type DeliveryOutcome = 'posted' | 'updated' | 'unchanged' | 'deferred' | 'nothing';

/** Consecutive transient failures of one copy before the outbox gives up on it (about 4 h at the 5-minute cap). */
export const MAX_FAILURES = 60;

/** Backoff after the n-th consecutive transient failure: 1 s, 2 s, 4 s … capped at 5 minutes. */
export function backoffMs(failures: number): number {
  return Math.min(300_000, 1000 * 2 ** Math.max(0, failures - 1));
}

export function hashRendering(m: Rendered): string {
  return createHash('sha256').update(JSON.stringify(m)).digest('hex');
}

export interface ChatDeliverer {
  deliverRun(runId: string): Promise<DeliveryOutcome>;
  deliverMessage(messageId: string): Promise<DeliveryOutcome>;
  /** Brings every copy of an approval (thread, DMs) up to date, creating them while it is pending. */
  deliverApproval(approvalId: string): Promise<DeliveryOutcome>;
  /** The deadline is near: reminds the approvers who have not decided (a reply under their DM). */
  remindApproval(approvalId: string): Promise<DeliveryOutcome>;
  deliverHome(who: Pick<Principal, 'platform' | 'tenant' | 'user'>): Promise<DeliveryOutcome>;
}

export interface DelivererOptions {
  pool: pg.Pool;
  platforms: ReadonlyMap<string, ChatPlatform>;
  log: Logger;
  /** How long before an approval's deadline its approvers are reminded (at most half-way). Default 1 h. */
  reminderLeadMs?: number;
}

/** Thrown (so the job is retried) when a row names a platform this process does not have. */
export class PlatformNotConfigured extends Error {
  constructor(platform: string) {
    super(`Chat platform "${platform}" is not configured in this process, so its messages wait; configure it (see the README) and they catch up.`);
  }
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

export function createChatDeliverer(opts: DelivererOptions): ChatDeliverer {
  const { pool, platforms } = opts;
  const log = opts.log.child({ component: 'chat-deliver' });
  const names = new Set(platforms.keys());
  const withHome = new Set([...platforms.values()].filter((p) => p.publishHome).map((p) => p.name));

  function platformOf(row: Pick<ChatMessageRow, 'platform'>): ChatPlatform {
    const p = platforms.get(row.platform);
    if (!p) throw new PlatformNotConfigured(row.platform);
    return p;
  }

  /** Posts or updates one message row to show `message`; returns what it did. */
  async function bring(q: pg.PoolClient, row: ChatMessageRow, message: Rendered): Promise<DeliveryOutcome> {
    const platform = platformOf(row);
    const hash = hashRendering(message);
    if (row.posted_hash === hash && (row.message_id || row.kind === 'reply')) return 'unchanged';
    if (!row.conversation && row.dm_to) {
      // A DM copy: open (or find) the direct conversation with the approver first.
      const dm = await platform.openDm(parsePrincipal(row.dm_to));
      await q.query(`UPDATE tollgate.chat_messages SET conversation = $2, address = $3, updated_at = now() WHERE id = $1`, [
        row.id,
        dm.conversation,
        dm.address === undefined ? null : JSON.stringify(dm.address),
      ]);
      row.conversation = dm.conversation;
      row.address = dm.address ?? null;
    }
    if (!row.conversation) return 'nothing';
    if (!row.message_id) {
      const posted = await platform.post(destination(row), message);
      await q.query(
        `UPDATE tollgate.chat_messages SET message_id = $2, conversation = coalesce($3, conversation), address = coalesce($4, address), posted_hash = $5,
           attempts = attempts + 1, failures = 0, not_before = NULL, last_error = NULL, updated_at = now() WHERE id = $1`,
        [row.id, posted.messageId, posted.conversation ?? null, posted.address === undefined ? null : JSON.stringify(posted.address), hash],
      );
      row.message_id = posted.messageId;
      observeOutboxLag(row.platform, row.kind, row.created_at);
      return 'posted';
    }
    await platform.update({ ...destination(row), messageId: row.message_id }, message);
    await q.query(
      `UPDATE tollgate.chat_messages SET posted_hash = $2, attempts = attempts + 1, failures = 0, not_before = NULL, last_error = NULL, updated_at = now() WHERE id = $1`,
      [row.id, hash],
    );
    return 'updated';
  }

  /**
   * Delivers `rows` with `render()`. A failure the platform calls transient records the wait on
   * the rows and re-schedules with `reschedule(at)`; a permanent one gives up on that copy and goes
   * on with the others.
   */
  async function deliverRows(
    q: pg.PoolClient,
    rows: ChatMessageRow[],
    render: (row: ChatMessageRow) => Rendered | undefined,
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
        const done = await traceChatDelivery(q, row, () => bring(q, row, message), (e) => platformOf(row).classify(e));
        if (done !== 'unchanged') outcome = done;
      } catch (e) {
        if (e instanceof PlatformNotConfigured) throw e;
        const failure = platformOf(row).classify(e);
        countChatApiError(row.platform, failure);
        const error = `${failure.reason}`.slice(0, 1000);
        if (failure.kind === 'permanent') {
          // Retrying cannot help (not in the channel, message deleted …): record it on the row and
          // deliver the other copies.
          await q.query(`UPDATE tollgate.chat_messages SET attempts = attempts + 1, last_error = $2, given_up_at = now(), updated_at = now() WHERE id = $1`, [row.id, error]);
          log.warn({ messageId: row.id, runId: row.run_id, platform: row.platform, conversation: row.conversation, code: failure.code }, 'the platform refused a message for good; it will not be retried');
          continue;
        }
        const failures = row.failures + 1;
        if (failures >= MAX_FAILURES) {
          await q.query(`UPDATE tollgate.chat_messages SET attempts = attempts + 1, failures = $2, last_error = $3, given_up_at = now(), updated_at = now() WHERE id = $1`, [
            row.id,
            failures,
            `gave up after ${failures} failed attempts; last: ${error}`,
          ]);
          log.error({ messageId: row.id, runId: row.run_id, platform: row.platform, failures }, 'gave up delivering a message after repeated failures');
          continue;
        }
        const waitMs = failure.retryAfterMs !== undefined ? Math.max(1000, failure.retryAfterMs) : backoffMs(failures);
        const at = new Date(Date.now() + waitMs);
        // Every copy in this delivery waits: they go to the same platform, usually the same place.
        await q.query(`UPDATE tollgate.chat_messages SET not_before = $2, updated_at = now() WHERE id = ANY($1)`, [rows.map((r) => r.id), at]);
        await q.query(`UPDATE tollgate.chat_messages SET attempts = attempts + 1, failures = $2, last_error = $3 WHERE id = $1`, [row.id, failures, error]);
        await reschedule(at);
        log.warn({ messageId: row.id, runId: row.run_id, platform: row.platform, waitMs, error }, 'a chat delivery failed; it will be retried');
        return 'deferred';
      }
    }
    return outcome;
  }

  /** The home pages of an approval's approvers, on platforms that have one. */
  async function refreshHomes(q: pg.PoolClient, a: ApprovalRecord): Promise<void> {
    for (const p of dmApprovers(a, withHome)) await enqueueHomeDelivery(q, p);
  }

  return {
    deliverRun: (runId) =>
      withTransaction(pool, async (q) => {
        const { rows } = await q.query<ChatMessageRow>(
          `SELECT * FROM tollgate.chat_messages WHERE run_id = $1 AND kind = 'run' AND given_up_at IS NULL ORDER BY created_at, id FOR UPDATE`,
          [runId],
        );
        if (rows.length === 0) return 'nothing';
        const view = await loadRunMessageView(q, runId);
        if (!view) return 'nothing';
        const out = await deliverRows(q, rows, (row) => platformOf(row).render({ kind: 'run', run: view }), (at) => enqueueRunDelivery(q, runId, at));
        if (out === 'posted') {
          // The run message now has an id: pending approvals can get their copy in its thread.
          const pending = await q.query<{ id: string }>(`SELECT id FROM tollgate.approvals WHERE run_id = $1 AND status = 'pending'`, [runId]);
          for (const p of pending.rows) await enqueueApprovalDelivery(q, p.id);
        }
        return out;
      }),

    deliverMessage: (messageId) =>
      withTransaction(pool, async (q) => {
        const { rows } = await q.query<ChatMessageRow>(`SELECT * FROM tollgate.chat_messages WHERE id = $1 FOR UPDATE`, [messageId]);
        const row = rows[0];
        if (!row?.body || row.posted_hash || row.given_up_at) return 'nothing';
        return deliverRows(q, [row], (r) => r.body ?? undefined, (at) => enqueueMessageDelivery(q, messageId, at));
      }),

    deliverApproval: (approvalId) =>
      withTransaction(pool, async (q) => {
        // Lock, then read: a delivery that waited here behind another must not post the state it
        // would have read before waiting.
        await q.query(`SELECT pg_advisory_xact_lock(hashtextextended('chat:apr:' || $1, 0))`, [approvalId]);
        const a = await getApproval(q, approvalId);
        if (!a) return 'nothing';
        const chat = await q.query(`SELECT 1 FROM tollgate.chat_runs WHERE run_id = $1`, [a.runId]);
        if (chat.rows.length === 0) return 'nothing';
        if (a.status === 'pending') await ensureApprovalCopies(q, a, names);
        const { rows } = await q.query<ChatMessageRow>(
          `SELECT * FROM tollgate.chat_messages WHERE approval_id = $1 AND kind = 'approval' AND given_up_at IS NULL ORDER BY created_at, id FOR UPDATE`,
          [approvalId],
        );
        // Each approver's home page lists what waits for them: refresh it on every change.
        await refreshHomes(q, a);
        if (a.status === 'pending' && rows.some((r) => r.dm_to && !r.reminded_at)) {
          const at = reminderTime(a, opts.reminderLeadMs ?? 3_600_000);
          if (at) await scheduleReminder(q, approvalId, at);
        }
        if (rows.length === 0) return 'nothing';
        const view = toApprovalView(a);
        return deliverRows(q, rows, (row) => platformOf(row).render({ kind: 'approval', approval: view, copy: copyOf(row.copy) }), (at) => enqueueApprovalDelivery(q, approvalId, at));
      }),

    remindApproval: (approvalId) =>
      withTransaction(pool, async (q) => {
        const a = await getApproval(q, approvalId);
        if (!a || a.status !== 'pending') return 'nothing';
        const { rows } = await q.query<ChatMessageRow>(
          `SELECT * FROM tollgate.chat_messages WHERE approval_id = $1 AND kind = 'approval' AND dm_to IS NOT NULL AND reminded_at IS NULL
             AND given_up_at IS NULL ORDER BY created_at, id FOR UPDATE`,
          [approvalId],
        );
        let outcome: DeliveryOutcome = 'nothing';
        let waiting = 0;
        const view = toApprovalView(a);
        for (const row of rows) {
          if (!row.copy || !mayStillDecide(a, row.copy)) continue;
          if (!row.conversation || !row.message_id) {
            waiting++; // the DM itself is not delivered yet (the platform is down): remind once it is
            continue;
          }
          const platform = platformOf(row);
          await addReply(
            q,
            { platform: row.platform, tenant: row.tenant, conversation: row.conversation, thread: row.message_id, address: row.address ?? undefined },
            platform.render({ kind: 'reminder', approval: view }),
          );
          await q.query('UPDATE tollgate.chat_messages SET reminded_at = now() WHERE id = $1', [row.id]);
          outcome = 'posted';
        }
        if (waiting > 0) await scheduleReminder(q, approvalId, new Date(Date.now() + 30_000));
        return outcome;
      }),

    deliverHome: async (who) => {
      const platform = platforms.get(who.platform);
      if (!platform) throw new PlatformNotConfigured(who.platform);
      if (!platform.publishHome) return 'nothing';
      const principal: Principal = { platform: who.platform, tenant: who.tenant, user: who.user };
      const [runs, pending] = await Promise.all([listRunsRequestedBy(pool, principal, 10), listPendingApprovals(pool, principal)]);
      try {
        await platform.publishHome(principal, { runs: runs.map(toRunSummary), approvals: pending.map(toApprovalView) });
        return 'updated';
      } catch (e) {
        const failure = platform.classify(e);
        countChatApiError(who.platform, failure);
        if (failure.kind === 'permanent') {
          log.warn({ platform: who.platform, user: who.user, code: failure.code }, 'the platform refused a home page for good');
          return 'nothing';
        }
        // A home page has no row to keep a wait on: its (coalesced) job is re-scheduled instead.
        await enqueueHomeDelivery(pool, who, new Date(Date.now() + Math.max(1000, failure.retryAfterMs ?? 5000)));
        return 'deferred';
      }
    },
  };
}
