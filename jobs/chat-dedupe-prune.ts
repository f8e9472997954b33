/**
 * Task `chat-dedupe-prune`: forgets chat delivery keys (event ids, trigger ids, click keys of every
 * platform) older than a day. They exist to make platform retries no-ops, and platforms retry for
 * minutes, not days; without pruning the table grows with every request forever. Hourly.
 */
import type { Task } from 'graphile-worker';
import type pg from 'pg';
import { pruneDeliveryKeys } from '../src/db/queries/chat-outbox.ts';

export const identifier = 'chat-dedupe-prune';

/** Hourly, at minute 7. */
export const crontabLine = `7 * * * * ${identifier}`;

export const KEEP_DELIVERY_KEYS = '1 day';

export function makeChatDedupePrune(pool: pg.Pool): Task {
  return async (_payload, helpers) => {
    const n = await pruneDeliveryKeys(pool, KEEP_DELIVERY_KEYS);
    helpers.logger.debug(`chat-dedupe-prune: forgot ${n} delivery keys`);
  };
}
