import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/db/migrate.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb({ migrate: false });
});
afterAll(async () => {
  await db.close();
});

describe('migrations', () => {
  it("create our schema and Graphile Worker's, and running them again changes nothing", async () => {
    const first = await migrate(db.pool, testLogger());
    expect(first[0]).toBe('000001_runtime');
    const tables = await db.pool.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'tollgate' ORDER BY 1`);
    expect(tables.rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(['runs', 'steps', 'events', 'migrations']));
    expect(await migrate(db.pool, testLogger())).toEqual([]);
    expect(await migrate(db.pool, testLogger())).toEqual([]);
    const jobsTable = await db.pool.query(`SELECT to_regclass('graphile_worker._private_jobs') AS t`);
    expect(jobsTable.rows[0].t).not.toBeNull();
  });

  it('refuses to run against a database migrated by a newer Tollgate', async () => {
    await db.pool.query(`INSERT INTO tollgate.migrations (name, run_on) VALUES ('999999_from_the_future', now())`);
    try {
      await expect(migrate(db.pool, testLogger())).rejects.toMatchObject({
        code: 'TG_DB_AHEAD',
        message: expect.stringContaining('999999_from_the_future'),
      });
    } finally {
      await db.pool.query(`DELETE FROM tollgate.migrations WHERE name = '999999_from_the_future'`);
    }
  });
});
