/**
 * Opens Tollgate's database: `DATABASE_URL` when set, otherwise the embedded PostgreSQL under
 * `TOLLGATE_DATA_DIR` (database `tollgate`, created on first use). Returns one pg Pool shared by
 * the runtime, the HTTP server and Graphile Worker, and a `close()` that ends the pool and then
 * stops the embedded server if this process started it.
 */
import pg from 'pg';
import type { Config } from '../config/config.ts';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type { EmbeddedServer } from './embedded.ts';
import { loadAuditKey, rememberPoolKey, type AuditKey } from '../audit/key.ts';
import { ensureEmbeddedAppRole } from './app-role.ts';

export interface Database {
  readonly pool: pg.Pool;
  readonly url: string;
  readonly embedded: EmbeddedServer | undefined;
  /** The schema owner's login, for migrations (the embedded superuser, or DATABASE_MIGRATION_URL); unset: `url`. */
  readonly ownerUrl?: string;
  /** The audit chain's key; every pool of this process carries it (src/audit/key.ts). */
  readonly auditKey?: AuditKey;
  close(): Promise<void>;
}

/** Creates `name` on the server of `maintenanceUrl` unless it exists. */
export async function ensureDatabase(maintenanceUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: maintenanceUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) {
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`).catch((e: { code?: string }) => {
        if (e.code !== '42P04' && e.code !== '23505') throw e; // created meanwhile by another process
      });
    }
  } finally {
    await client.end();
  }
}

/**
 * A pool; with `auditKey`, each session gets the key's pads at start-up, so it can append events.
 * `keepIdle`: connections stay open while idle (a serving process), so the first request of a
 * burst after a quiet spell does not open connections: with SCRAM that took ~200 ms under load,
 * and every request queued behind it waited too. Otherwise they close after 10 s idle (pg's default).
 */
export function createPool(url: string, max: number, log: Logger, auditKey?: AuditKey, opts: { keepIdle?: boolean } = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: opts.keepIdle ? 0 : 10_000,
    ...(auditKey ? { options: auditKey.pgOptions } : {}),
  });
  if (auditKey) rememberPoolKey(pool, auditKey);
  // An idle client losing its connection (database restart) must not crash the process.
  pool.on('error', (err) => log.warn({ err: err.message }, 'idle PostgreSQL connection lost'));
  // A checked-out client whose connection drops emits 'error' on the client; unhandled, it kills the process.
  pool.on('connect', (client) => {
    client.on('error', (err) => log.warn({ err: err.message }, 'PostgreSQL connection lost'));
  });
  return pool;
}

export async function openDatabase(config: Config, log: Logger, opts: { keepIdle?: boolean } = {}): Promise<Database> {
  let embedded: EmbeddedServer | undefined;
  let url = config.databaseUrl;
  let ownerUrl = config.databaseMigrationUrl ?? url;
  const auditKey = await loadAuditKey({ keyHex: config.audit.keyHex, dataDir: config.dataDir });
  if (!url) {
    // Loaded only here: with DATABASE_URL set, no command needs the embedded server's modules.
    const { startEmbeddedPostgres, withDatabase } = await import('./embedded.ts');
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, log });
    await ensureDatabase(embedded.url, 'tollgate');
    ownerUrl = withDatabase(embedded.url, 'tollgate');
    url = ownerUrl;
  }
  let pool: pg.Pool | undefined;
  try {
    // The superuser migrates; the app runs as the least-privilege login (src/db/app-role.ts).
    if (embedded) url = await ensureEmbeddedAppRole(config.dataDir, ownerUrl as string);
    pool = createPool(url, config.pgPoolSize, log, auditKey, opts);
    await pool.query('SELECT 1');
  } catch (e) {
    await pool?.end().catch(() => {});
    await embedded?.stop();
    throw new TollgateError(
      'TG_DB_UNREACHABLE',
      `Cannot connect to PostgreSQL at ${maskUrl(url)}: ${(e as Error).message}. ` +
        'Check DATABASE_URL (or unset it to use the embedded database).',
      {},
      { cause: e },
    );
  }
  let closed = false;
  const opened = pool;
  return {
    pool: opened,
    url,
    embedded,
    ownerUrl,
    auditKey,
    close: async () => {
      if (closed) return;
      closed = true;
      await opened.end().catch(() => {});
      await embedded?.stop();
    },
  };
}

export function maskUrl(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
}
