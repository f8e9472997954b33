import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCrontab, type JobHelpers } from 'graphile-worker';
import { crontab } from '../jobs/index.ts';
import { makeSlackDedupePrune } from '../jobs/slack-dedupe-prune.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.close();
});

describe('Slack delivery keys', () => {
  it('are forgotten after a day, so the dedupe table does not grow forever; recent ones stay', async () => {
    await db.pool.query(`INSERT INTO tollgate.slack_deliveries (key, kind, received_at) VALUES
      ('event:OLD', 'event_callback', now() - interval '2 days'),
      ('event:NEW', 'event_callback', now() - interval '5 minutes')`);
    await makeSlackDedupePrune(db.pool)({}, { logger: { debug: () => {} } } as unknown as JobHelpers);
    const { rows } = await db.pool.query<{ key: string }>('SELECT key FROM tollgate.slack_deliveries ORDER BY key');
    expect(rows.map((r) => r.key)).toEqual(['event:NEW']);
  });

  it('are pruned hourly when Slack is configured; the stuck-run sweep runs every minute, retention daily when configured', () => {
    expect(crontab({ retentionDays: undefined, slack: false })).toBe('* * * * * run-sweep');
    expect(crontab({ retentionDays: undefined, slack: true })).toBe('* * * * * run-sweep\n7 * * * * slack-dedupe-prune');
    const all = crontab({ retentionDays: 30, slack: true });
    expect(all.split('\n')).toEqual(['* * * * * run-sweep', '17 3 * * * retention-purge', '7 * * * * slack-dedupe-prune']);
    expect(parseCrontab(all).map((item) => item.task)).toEqual(['run-sweep', 'retention-purge', 'slack-dedupe-prune']); // Graphile accepts it
  });
});
