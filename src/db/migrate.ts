/**
 * Schema migrations: our SQL files in `migrations/` (six-digit numbered, append-only, applied by
 * node-pg-migrate, each in its own transaction, under an advisory lock so concurrent starts are
 * safe), then Graphile Worker's own schema.
 *
 * Then the SQL functions in `migrations/functions/` are applied where their file changed (each
 * file idempotent, CREATE OR REPLACE), in one transaction under a lock: a function's body lives
 * in exactly one file instead of being pasted into every migration that changes it.
 *
 * Start-up checks first whether anything is to be done (every migration file applied, Graphile
 * Worker's schema at its latest revision, every functions file current): when nothing is, it
 * takes no lock and runs nothing, so forty CLI commands started together cost forty SELECTs.
 * Otherwise it WAITS for the migration lock (a session advisory lock), looks again and migrates:
 * concurrent starts on a fresh or older database queue up instead of failing with "Another
 * migration is already running".
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
// Graphile Worker's own migration files, to know its latest schema revision without running it.
import { migrations as workerMigrationFiles } from 'graphile-worker/dist/generated/sql.js';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';

// From src/db/migrate.ts, or from its compiled copy one folder deeper (dist/src/db/migrate.js).
export const MIGRATIONS_DIR = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../../migrations' : '../../../migrations', import.meta.url));
export const FUNCTIONS_DIR = path.join(MIGRATIONS_DIR, 'functions');
const TABLE = 'migrations';
/** PostgreSQL 14, as `server_version_num` writes it. */
const MIN_SERVER_VERSION = 140000;
const SCHEMA = 'tollgate';
/** Session advisory lock held while migrating (arbitrary but fixed: 'tgmg'). */
export const MIGRATION_LOCK = 0x74676d67;
const LATEST_WORKER_MIGRATION = Math.max(...Object.keys(workerMigrationFiles).map((f) => parseInt(f.slice(0, 6), 10)));

/** PostgreSQL error codes for "no such table" and "no such schema": a database never migrated. */
const missing = (e: { code?: string }) => e.code === '42P01' || e.code === '3F000';

export async function migrate(pool: pg.Pool, log: Logger): Promise<string[]> {
  const known = readdirSync(MIGRATIONS_DIR)
    .filter((f) => f.endsWith('.sql'))
    .map((f) => f.replace(/\.sql$/, ''));

  const client = await pool.connect();
  // A session whose lock could not be given back (a failed migration left its transaction
  // aborted) is destroyed instead of returned to the pool: closing it frees the lock, where a
  // pooled connection would hold it, and every other process would wait for it forever.
  let destroy = false;
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
    const applied = await appliedMigrations(client);
    refuseUnknown(applied, known);
    if (await schemaIsCurrent(client, applied, known)) return [];
    const login = (await client.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u ?? '?';

    // Something is to be done: one process at a time. Waiting (not failing) is the point: the
    // others find the work done when they get the lock.
    const locked = (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [MIGRATION_LOCK])).rows[0]?.ok;
    if (!locked) {
      log.info('another process is migrating the database; waiting for it');
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    }
    try {
      refuseUnknown(await appliedMigrations(client), known); // a newer Tollgate may have held the lock
      // Loaded only when there is something to migrate: every CLI command passes here, most find nothing to do.
      const [{ runner }, { runMigrations: runWorkerMigrations }] = await Promise.all([import('node-pg-migrate'), import('graphile-worker')]);
      const ran = await runner({
        dbClient: client,
        dir: MIGRATIONS_DIR,
        direction: 'up',
        migrationsTable: TABLE,
        migrationsSchema: SCHEMA,
        createMigrationsSchema: true,
        checkOrder: true,
        singleTransaction: false,
        // Its own lock too, in case an older Tollgate (which does not take ours) migrates meanwhile.
        advisoryLockMode: 'wait',
        log: (msg: string) => log.debug({ migration: msg }, 'migrate'),
      });
      for (const m of ran) log.info({ migration: m.name }, 'applied migration');
      await runWorkerMigrations({ pgPool: pool, logger: undefined });
      await applyFunctions(pool);
      return ran.map((m) => m.name);
    } catch (e) {
      if ((e as { code?: string }).code === '42501') throw migrationDenied(login, e);
      throw e;
    } finally {
      await client.query('ROLLBACK').catch(() => {}); // "no transaction in progress" is only a warning
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {
        destroy = true;
      });
    }
  } finally {
    client.release(destroy);
  }
}

/**
 * The schema is behind and this login may not change it: typically a server or worker given only
 * the app's login (as docs/operations.md advises) started by a newer Tollgate before `tollgate
 * migrate` ran with the owner's.
 */
function migrationDenied(login: string, cause: unknown): TollgateError {
  return new TollgateError(
    'TG_DB_MIGRATION_DENIED',
    `The database schema is behind this Tollgate, and the login "${login}" may not migrate it (${(cause as Error).message}). ` +
      "Run `tollgate migrate` with DATABASE_MIGRATION_URL set to the database owner's login, then start this again " +
      '(docs/operations.md, "Database roles").',
    { login },
    { cause },
  );
}

async function appliedMigrations(q: pg.ClientBase): Promise<string[]> {
  return q
    .query<{ name: string }>(`SELECT name FROM ${SCHEMA}.${TABLE} ORDER BY id`)
    .then((r) => r.rows.map((row) => row.name))
    .catch((e: { code?: string }) => {
      if (missing(e)) return [] as string[];
      throw e;
    });
}

function refuseUnknown(applied: string[], known: string[]): void {
  const unknown = applied.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new TollgateError(
      'TG_DB_AHEAD',
      `The database was migrated by a newer Tollgate: it has ${unknown.join(', ')}, which this code does not know. ` +
        'Run the newer version, or restore a backup taken before the upgrade.',
      { unknown },
    );
  }
}

/** True when there is nothing to do: all our migrations, Graphile Worker's latest, every functions file. */
async function schemaIsCurrent(q: pg.ClientBase, applied: string[], known: string[]): Promise<boolean> {
  if (known.some((name) => !applied.includes(name))) return false;
  const worker = await q
    .query<{ id: number | null }>('SELECT max(id) AS id FROM graphile_worker.migrations')
    .then((r) => r.rows[0]?.id ?? 0)
    .catch((e: { code?: string }) => {
      if (missing(e)) return 0;
      throw e;
    });
  if (worker < LATEST_WORKER_MIGRATION) return false;
  return (await staleFunctions(q, functionFiles())).length === 0;
}

interface FunctionFile {
  name: string;
  text: string;
  sha256: string;
}

function functionFiles(): FunctionFile[] {
  return readdirSync(FUNCTIONS_DIR)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((name) => {
      const text = readFileSync(path.join(FUNCTIONS_DIR, name), 'utf8');
      return { name, text, sha256: createHash('sha256').update(text).digest('hex') };
    });
}

/** The files whose text differs from the version last applied (all of them before migration 000009). */
async function staleFunctions(q: pg.ClientBase | pg.Pool, files: FunctionFile[]): Promise<FunctionFile[]> {
  const rows = await q
    .query<{ name: string; sha256: string }>('SELECT name, sha256 FROM tollgate.function_files')
    .then((r) => r.rows)
    .catch((e: { code?: string }) => {
      if (missing(e)) return [];
      throw e;
    });
  const applied = new Map(rows.map((r) => [r.name, r.sha256]));
  return files.filter((f) => applied.get(f.name) !== f.sha256);
}

/**
 * Applies the files of `migrations/functions/` that changed since they were last applied (or were
 * never), in name order, in one transaction, one process at a time. A file's version is the
 * sha256 of its text, kept in `tollgate.function_files`; when every file matches, start-up pays
 * one SELECT and takes no lock.
 */
export async function applyFunctions(pool: pg.Pool): Promise<string[]> {
  const files = functionFiles();
  if ((await staleFunctions(pool, files)).length === 0) return [];
  return withTransaction(pool, async (q) => {
    // CREATE OR REPLACE of a trigger or function takes locks that concurrent starts would fight
    // over; one at a time (the key is arbitrary but fixed: 'tgfn'), and look again once holding it.
    await q.query("SELECT pg_advisory_xact_lock(x'7467666e'::int)");
    const todo = await staleFunctions(q, files);
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
