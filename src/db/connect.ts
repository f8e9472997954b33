/**
 * Pools and databases: `createPool` (every pool of Tollgate's, with the audit key's session
 * options), `ensureDatabase`, `maskUrl`. The boot opens the configured database with these
 * (src/boot/database.ts).
 */
import pg from 'pg';
import type { Logger } from '../common/log.ts';
import { rememberPoolKey, type AuditKey } from './pool-key.ts';

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

export function maskUrl(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
}
