import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCrontab, type JobHelpers } from 'graphile-worker';
import { crontab } from '../jobs/index.ts';
import { makeChatDedupePrune } from '../jobs/chat-dedupe-prune.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.close();
});

describe('chat delivery keys', () => {
  it('are forgotten after a day on every platform, so the dedupe table does not grow forever; recent ones stay', async () => {
    await db.pool.query(`INSERT INTO tollgate.chat_delivery_keys (platform, key, kind, received_at) VALUES
      ('slack', 'event:OLD', 'event_callback', now() - interval '2 days'),
      ('teams', 'activity:OLD', 'message', now() - interval '2 days'),
      ('slack', 'event:NEW', 'event_callback', now() - interval '5 minutes')`);
    await makeChatDedupePrune(db.pool)({}, { logger: { debug: () => {} } } as unknown as JobHelpers);
    const { rows } = await db.pool.query<{ key: string }>('SELECT key FROM tollgate.chat_delivery_keys ORDER BY key');
    expect(rows.map((r) => r.key)).toEqual(['event:NEW']);
  });

  it('are pruned hourly; the stuck-run sweep and audit checkpoints run every minute, retention daily unless turned off', () => {
    expect(crontab({ retentionDays: 'off' })).toBe('* * * * * run-sweep\n7 * * * * chat-dedupe-prune\n* * * * * audit-checkpoint');
    const all = crontab({ retentionDays: 30 });
    expect(all.split('\n')).toEqual(['* * * * * run-sweep', '17 3 * * * retention-purge', '7 * * * * chat-dedupe-prune', '* * * * * audit-checkpoint']);
    expect(parseCrontab(all).map((item) => item.task)).toEqual(['run-sweep', 'retention-purge', 'chat-dedupe-prune', 'audit-checkpoint']); // Graphile accepts it
  });
});
