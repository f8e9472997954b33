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
 *   retry after `Retry-After`, retry with a backoff (deliver/rows.ts), or give up on that copy for good.
 *   The wait is recorded on the rows (`not_before`, `failures`) and the job re-schedules itself
 *   under its own key, so a message has at most one pending delivery job however long the outage.
 *   A delivery scheduled earlier (a new event) sees `not_before` and moves itself to that time.
 * - The run is never blocked: it only ever enqueues a job (the events trigger).
 * - A row whose platform is not configured in this process is left alone and its job retried
 *   later (the message catches up once that platform is configured).
 *
 * The pieces, in src/chat/deliver/: `run.ts` (a run's messages, replies), `approval.ts` (an
 * approval's copies, reminders), `home.ts` (home pages); each locks and reads, then hands its rows
 * to `rows.ts` (deliver a set of rows, record a failure and its backoff), which brings each row up
 * to its rendering with `bring.ts` (post or update, skipped when the hash is unchanged).
 */
import type pg from 'pg';
import type { Logger } from '../common/log.ts';
import type { Principal } from '../common/principals.ts';
import type { ChatPlatform } from './platform.ts';
import { deliverApproval, remindApproval } from './deliver/approval.ts';
import { deliveryContext, type DeliveryOutcome } from './deliver/context.ts';
import { deliverHome } from './deliver/home.ts';
import { deliverMessage, deliverRun } from './deliver/run.ts';

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

export function createChatDeliverer(opts: DelivererOptions): ChatDeliverer {
  const ctx = deliveryContext(opts);
  return {
    deliverRun: (runId) => deliverRun(ctx, runId),
    deliverMessage: (messageId) => deliverMessage(ctx, messageId),
    deliverApproval: (approvalId) => deliverApproval(ctx, approvalId),
    remindApproval: (approvalId) => remindApproval(ctx, approvalId),
    deliverHome: (who) => deliverHome(ctx, who),
  };
}
