/**
 * Task `slack-dedupe-prune`: forgets Slack delivery keys (event ids, trigger ids, click keys) older
 * than a day. They exist to make Slack's retries no-ops, and Slack retries an event for minutes,
 * not days; without pruning the table grows with every request forever. Scheduled hourly.
 */
import type { Task } from 'graphile-worker';
import type pg from 'pg';

export const identifier = 'slack-dedupe-prune';

/** Hourly, at minute 7. */
export const crontabLine = `7 * * * * ${identifier}`;

export const KEEP_DELIVERY_KEYS = '1 day';

export function makeSlackDedupePrune(pool: pg.Pool): Task {
  return async (_payload, helpers) => {
    const { rowCount } = await pool.query(`DELETE FROM tollgate.slack_deliveries WHERE received_at < now() - $1::interval`, [KEEP_DELIVERY_KEYS]);
    helpers.logger.debug(`slack-dedupe-prune: forgot ${rowCount ?? 0} delivery keys`);
  };
}
