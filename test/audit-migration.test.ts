import { afterAll, beforeAll, expect, it } from 'vitest';
import { runner } from 'node-pg-migrate';
import { migrate, MIGRATIONS_DIR } from '../src/db/migrate.ts';
import { verifyAuditChain } from '../src/audit/verify.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb({ migrate: false });
});
afterAll(async () => {
  await db.close();
});

it('chains the events of a database migrated before the audit chain existed, and migrating again is harmless', async () => {
  const client = await db.pool.connect();
  try {
    await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      direction: 'up',
      count: 1,
      migrationsTable: 'migrations',
      migrationsSchema: 'tollgate',
      createMigrationsSchema: true,
      checkOrder: true,
      log: () => {},
    });
  } finally {
    client.release();
  }
  await db.pool.query(`INSERT INTO tollgate.runs (id, workflow, workflow_version, status, input) VALUES ('run_old', 'demo', 1, 'succeeded', '{}')`);
  await db.pool.query(
    `INSERT INTO tollgate.events (run_id, type, payload) VALUES ('run_old', 'run.created', '{"a":1}'), (NULL, 'system.note', '{}'), ('run_old', 'run.succeeded', '{"b":2}')`,
  );
  await migrate(db.pool, testLogger());
  await migrate(db.pool, testLogger());
  const { rows } = await db.pool.query(`SELECT run_id, seq::int FROM tollgate.events ORDER BY id`);
  expect(rows).toEqual([
    { run_id: 'run_old', seq: 1 },
    { run_id: null, seq: 1 },
    { run_id: 'run_old', seq: 2 },
  ]);
  await db.pool.query(`INSERT INTO tollgate.events (run_id, type) VALUES ('run_old', 'run.noted')`);
  expect(await verifyAuditChain(db.pool)).toMatchObject({ ok: true, events: 4, chains: 2 });
});
