/**
 * Delivering a set of message rows (a run's messages, an approval's copies, one reply) and what a
 * failure does to them. Failures never fail the job: the platform classifies each error
 * (`ChatPlatform.classify`): retry after `Retry-After`, retry with this module's backoff, or give
 * up on that copy for good. The wait is recorded on the rows (`not_before`, `failures`) and the
 * delivery re-schedules itself (`reschedule`, its job under its own key), so a message has at most
 * one pending delivery job however long the outage.
 */
import { backoffDelay, type Backoff } from '../../common/backoff.ts';
import type { Queryable } from '../../db/queryable.ts';
import type { ChatMessageRow } from '../../db/queries/chat-outbox.ts';
import { deferMessages, markGaveUp, markRefused, recordFailure } from '../../db/queries/chat-delivery.ts';
import { countChatApiError } from '../../telemetry/metrics.ts';
import { traceChatDelivery } from '../../telemetry/tracing-spans.ts';
import type { Rendered } from '../platform.ts';
import { bring } from './bring.ts';
import { PlatformNotConfigured, platformOf, type DeliveryContext, type DeliveryOutcome } from './context.ts';

/** Consecutive transient failures of one copy before the outbox gives up on it (about 4 h at the 5-minute cap). */
export const MAX_FAILURES = 60;

/** The outbox's backoff: 1 s, 2 s, 4 s … capped at 5 minutes. */
const DELIVERY_BACKOFF: Backoff = { firstMs: 1000, maxMs: 300_000 };

/** Backoff after the n-th consecutive transient failure. */
export function backoffMs(failures: number): number {
  return backoffDelay(DELIVERY_BACKOFF, Math.max(0, failures - 1));
}

/**
 * Delivers `rows` with `render()`. A failure the platform calls transient records the wait on
 * the rows and re-schedules with `reschedule(at)`; a permanent one gives up on that copy and goes
 * on with the others.
 */
export async function deliverRows(
  ctx: DeliveryContext,
  q: Queryable,
  rows: ChatMessageRow[],
  render: (row: ChatMessageRow) => Rendered | undefined,
  reschedule: (at: Date) => Promise<void>,
): Promise<DeliveryOutcome> {
  // A delivery scheduled earlier (a new event) sees `not_before` and moves itself to that time.
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
      const done = await traceChatDelivery(
        q,
        row,
        () => bring(q, platformOf(ctx, row), row, message),
        (e) => platformOf(ctx, row).classify(e),
      );
      if (done !== 'unchanged') outcome = done;
    } catch (e) {
      if (e instanceof PlatformNotConfigured) throw e;
      if ((await recordDeliveryFailure(ctx, q, rows, row, e, reschedule)) === 'deferred') return 'deferred';
    }
  }
  return outcome;
}

/**
 * Records a failed delivery of `row`: given up (the platform refused it for good, or too many
 * transient failures in a row: 'next', go on with the other rows), or every row of this delivery
 * waits and the delivery is re-scheduled ('deferred').
 */
async function recordDeliveryFailure(
  ctx: DeliveryContext,
  q: Queryable,
  rows: ChatMessageRow[],
  row: ChatMessageRow,
  e: unknown,
  reschedule: (at: Date) => Promise<void>,
): Promise<'next' | 'deferred'> {
  const failure = platformOf(ctx, row).classify(e);
  countChatApiError(row.platform, failure);
  const error = `${failure.reason}`.slice(0, 1000);
  if (failure.kind === 'permanent') {
    // Retrying cannot help (not in the channel, message deleted …): record it on the row and
    // deliver the other copies.
    await markRefused(q, row.id, error);
    ctx.log.warn(
      { messageId: row.id, runId: row.run_id, platform: row.platform, conversation: row.conversation, code: failure.code },
      'the platform refused a message for good; it will not be retried',
    );
    return 'next';
  }
  const failures = row.failures + 1;
  if (failures >= MAX_FAILURES) {
    await markGaveUp(q, row.id, failures, `gave up after ${failures} failed attempts; last: ${error}`);
    ctx.log.error({ messageId: row.id, runId: row.run_id, platform: row.platform, failures }, 'gave up delivering a message after repeated failures');
    return 'next';
  }
  const waitMs = failure.retryAfterMs !== undefined ? Math.max(1000, failure.retryAfterMs) : backoffMs(failures);
  const at = new Date(Date.now() + waitMs);
  // Every copy in this delivery waits: they go to the same platform, usually the same place.
  await deferMessages(
    q,
    rows.map((r) => r.id),
    at,
  );
  await recordFailure(q, row.id, failures, error);
  await reschedule(at);
  ctx.log.warn({ messageId: row.id, runId: row.run_id, platform: row.platform, waitMs, error }, 'a chat delivery failed; it will be retried');
  return 'deferred';
}
