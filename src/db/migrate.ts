/**
 * Schema migrations: our SQL files in `migrations/` (six-digit numbered, append-only, applied by
 * node-pg-migrate, each in its own transaction, under an advisory lock so concurrent starts are
 * safe), then Graphile Worker's own schema.
 *
 * Then the SQL functions in `migrations/functions/` are applied where their file changed (each
 * file idempotent, CREATE OR REPLACE), in one transaction under a lock: a function's body lives
 * in exactly one file instead of being pasted into every migration that changes it.
 *
 * Refuses to run when the database has migrations this code does not know (it was migrated by a
 * newer Tollgate): running old code on a newer schema is how data gets corrupted.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { withTransaction } from './transaction.ts';
import type pg from 'pg';
import { runner } from 'node-pg-migrate';
import { runMigrations as runWorkerMigrations } from 'graphile-worker';
import { TollgateError } from '../errors.ts';
import type { Logger } from '../log.ts';

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');
export const FUNCTIONS_DIR = path.join(MIGRATIONS_DIR, 'functions');
const TABLE = 'migrations';
/** PostgreSQL 14, as `server_version_num` writes it. */
const MIN_SERVER_VERSION = 140000;
const SCHEMA = 'tollgate';

export async function migrate(pool: pg.Pool, log: Logger): Promise<string[]> {
  const known = readdirSync(MIGRATIONS_DIR)
    .filter((f) => f.endsWith('.sql'))
    .map((f) => f.replace(/\.sql$/, ''));

  const client = await pool.connect();
  try {
    // migrations/functions/ uses CREATE OR REPLACE TRIGGER (PostgreSQL 14): refuse before migrating
    // anything, rather than leave a half-upgraded schema on an older server.
    const version = Number((await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v ?? 0);
    if (version < MIN_SERVER_VERSION) {
      throw new TollgateError(
        'TG_DB_TOO_OLD',
        `This PostgreSQL is version ${Math.floor(version / 10000)}; Tollgate needs 14 or newer. Upgrade the server, or unset DATABASE_URL to use the embedded one.`,
        { version },
      );
    }
    const applied = await client
      .query<{ name: string }>(`SELECT name FROM ${SCHEMA}.${TABLE} ORDER BY id`)
      .then((r) => r.rows.map((row) => row.name))
      .catch((e: { code?: string }) => {
        if (e.code === '42P01' || e.code === '3F000') return [] as string[]; // no table/schema yet
        throw e;
      });
    const unknown = applied.filter((name) => !known.includes(name));
    if (unknown.length > 0) {
      throw new TollgateError(
        'TG_DB_AHEAD',
        `The database was migrated by a newer Tollgate: it has ${unknown.join(', ')}, which this code does not know. ` +
          'Run the newer version, or restore a backup taken before the upgrade.',
        { unknown },
      );
    }
    const ran = await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      direction: 'up',
      migrationsTable: TABLE,
      migrationsSchema: SCHEMA,
      createMigrationsSchema: true,
      checkOrder: true,
      singleTransaction: false,
      log: (msg: string) => log.debug({ migration: msg }, 'migrate'),
    });
    for (const m of ran) log.info({ migration: m.name }, 'applied migration');
    await runWorkerMigrations({ pgPool: pool, logger: undefined });
    await applyFunctions(pool);
    return ran.map((m) => m.name);
  } finally {
    client.release();
  }
}

/**
 * Applies the files of `migrations/functions/` that changed since they were last applied (or were
 * never), in name order, in one transaction, one process at a time. A file's version is the
 * sha256 of its text, kept in `tollgate.function_files`; when every file matches, start-up pays
 * one SELECT and takes no lock.
 */
export async function applyFunctions(pool: pg.Pool): Promise<string[]> {
  const files = readdirSync(FUNCTIONS_DIR)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((name) => {
      const text = readFileSync(path.join(FUNCTIONS_DIR, name), 'utf8');
      return { name, text, sha256: createHash('sha256').update(text).digest('hex') };
    });
  const stale = async (q: pg.ClientBase | pg.Pool) => {
    const { rows } = await q.query<{ name: string; sha256: string }>('SELECT name, sha256 FROM tollgate.function_files');
    const applied = new Map(rows.map((r) => [r.name, r.sha256]));
    return files.filter((f) => applied.get(f.name) !== f.sha256);
  };
  if ((await stale(pool)).length === 0) return [];
  return withTransaction(pool, async (q) => {
    // CREATE OR REPLACE of a trigger or function takes locks that concurrent starts would fight
    // over; one at a time (the key is arbitrary but fixed: 'tgfn'), and look again once holding it.
    await q.query("SELECT pg_advisory_xact_lock(x'7467666e'::int)");
    const todo = await stale(q);
    for (const f of todo) {
      await q.query(f.text);
      await q.query(
        `INSERT INTO tollgate.function_files (name, sha256) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET sha256 = EXCLUDED.sha256, applied_at = now()`,
        [f.name, f.sha256],
      );
    }
    return todo.map((f) => f.name);
  });
}
