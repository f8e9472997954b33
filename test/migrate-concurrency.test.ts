/**
 * Concurrent starts: 1 of 40 parallel `tollgate approvals list --json` once exited 1 with
 * "Another migration is already running. Advisory lock mode is set to 'fail'". Each command
 * migrates on start, with its own pool, as a separate process would.
 */
import pg from 'pg';
import { PG_MIGRATE_LOCK_ID } from 'node-pg-migrate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../src/db/connect.ts';
import { MIGRATION_LOCK, migrate } from '../src/db/migrate.ts';
import { createTestDb, testAuditKey, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb({ migrate: false });
});
afterAll(async () => {
  await db.close();
});

describe('migrations started together', () => {
  it('30 processes migrating one fresh database at once all succeed, and the migrations run once', async () => {
    const pools = Array.from({ length: 30 }, () => createPool(db.url, 2, testLogger(), testAuditKey));
    try {
      const results = await Promise.allSettled(pools.map((pool) => migrate(pool, testLogger())));
      const failures = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
      expect(failures).toEqual([]);
      // Exactly one of them applied the migrations; the others waited and found nothing to do.
      const applied = results.map((r) => (r as PromiseFulfilledResult<string[]>).value);
      expect(applied.filter((names) => names.length > 0)).toHaveLength(1);
      const rows = await db.pool.query<{ name: string; n: string }>('SELECT name, count(*) AS n FROM tollgate.migrations GROUP BY name HAVING count(*) > 1');
      expect(rows.rows).toEqual([]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('on a current schema, migrate() takes no lock: it returns while another session holds every migration lock', async () => {
    await migrate(db.pool, testLogger());
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      // The locks a migrating process holds: ours, node-pg-migrate's and the functions lock.
      await holder.query("SELECT pg_advisory_lock($1), pg_advisory_lock($2), pg_advisory_lock(x'7467666e'::int)", [MIGRATION_LOCK, PG_MIGRATE_LOCK_ID]);
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => migrate(db.pool, testLogger())));
      expect(results.map((r) => (r.status === 'fulfilled' ? r.value : String(r.reason)))).toEqual(Array.from({ length: 10 }, () => []));
    } finally {
      await holder.end();
    }
  });
});
