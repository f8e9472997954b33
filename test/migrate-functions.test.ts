/**
 * The SQL function bodies of migrations/functions/: a database migrated fresh and one upgraded from
 * an older schema end with the same definition of every function and trigger of the tollgate
 * schema, and the audit chain's file (audit_chain.sql) holds exactly the bodies its migrations
 * last gave them (moving them there changed no behaviour).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runner } from 'node-pg-migrate';
import { runMigrations as runWorkerMigrations } from 'graphile-worker';
import type pg from 'pg';
import { MIGRATIONS_DIR, migrate } from '../src/db/migrate.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';

let fresh: TestDb;
let upgraded: TestDb;
let migrationsOnly: TestDb;

/** Our migrations up to `count` (all when undefined), without the functions files. */
async function runOurMigrations(db: TestDb, count?: number): Promise<void> {
  const client = await db.pool.connect();
  try {
    await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      direction: 'up',
      count,
      migrationsTable: 'migrations',
      migrationsSchema: 'tollgate',
      createMigrationsSchema: true,
      checkOrder: true,
      log: () => {},
    });
  } finally {
    client.release();
  }
}

async function definitions(pool: pg.Pool): Promise<{ functions: Record<string, string>; triggers: Record<string, string> }> {
  const f = await pool.query<{ name: string; def: string }>(
    `SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name, pg_get_functiondef(p.oid) AS def
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'tollgate' ORDER BY 1`,
  );
  const t = await pool.query<{ name: string; def: string }>(
    `SELECT c.relname || '.' || t.tgname AS name, pg_get_triggerdef(t.oid) AS def
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'tollgate' AND NOT t.tgisinternal ORDER BY 1`,
  );
  return { functions: Object.fromEntries(f.rows.map((r) => [r.name, r.def])), triggers: Object.fromEntries(t.rows.map((r) => [r.name, r.def])) };
}

beforeAll(async () => {
  [fresh, upgraded, migrationsOnly] = await Promise.all([createTestDb(), createTestDb({ migrate: false }), createTestDb({ migrate: false })]);
  // A database of a Tollgate from before 000015 (the chain trigger's latest body), upgraded.
  await runOurMigrations(upgraded, 14);
  await runWorkerMigrations({ pgPool: upgraded.pool });
  await migrate(upgraded.pool, testLogger());
  await runOurMigrations(migrationsOnly);
}, 120_000);
afterAll(async () => {
  await Promise.all([fresh?.close(), upgraded?.close(), migrationsOnly?.close()]);
});

describe('function files', () => {
  it('leave a fresh and an upgraded database with the same functions and triggers', async () => {
    const [a, b] = await Promise.all([definitions(fresh.pool), definitions(upgraded.pool)]);
    expect(Object.keys(a.functions)).toContain('tollgate.events_chain_append()');
    expect(b).toEqual(a);
  });

  it('hold the audit chain bodies the migrations last gave them', async () => {
    const [files, migrations] = await Promise.all([definitions(fresh.pool), definitions(migrationsOnly.pool)]);
    const chain = Object.keys(migrations.functions).filter((name) => /^tollgate\.(events_chain_append|event_link_hash)\(/.test(name));
    expect(chain).toHaveLength(2);
    for (const name of chain) expect(files.functions[name]).toBe(migrations.functions[name]);
  });
});
