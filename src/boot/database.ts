/**
 * Opens Tollgate's database for the composition root (src/app.ts): `DATABASE_URL` when set,
 * otherwise the embedded PostgreSQL under `TOLLGATE_DATA_DIR` (database `tollgate`, created on
 * first use). Returns one pg Pool shared by the runtime, the HTTP server and Graphile Worker, and a
 * `close()` that ends the pool and then stops the embedded server if this process started it.
 * Then `prepareDatabase` brings it up to date. It lives above the data layer because it joins the
 * data layer with the configuration and the audit key.
 */
import type pg from 'pg';
import { checkAuditKeyFingerprint, loadAuditKey } from '../audit/key.ts';
import { type AuditKey } from '../db/pool-key.ts';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type { Config } from '../config/config.ts';
import { ensureEmbeddedAppRole, migrateAndGrant, warnIfPrivileged } from '../db/app-role.ts';
import { createPool, ensureDatabase, maskUrl } from '../db/connect.ts';
import type { EmbeddedServer } from '../db/embedded.ts';
import { pingDatabase } from '../db/queries/health.ts';

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

export async function openDatabase(config: Config, log: Logger, opts: { keepIdle?: boolean } = {}): Promise<Database> {
  let embedded: EmbeddedServer | undefined;
  let url = config.databaseUrl;
  let ownerUrl = config.databaseMigrationUrl ?? url;
  const auditKey = await loadAuditKey({ keyHex: config.audit.keyHex, dataDir: config.dataDir });
  if (!url) {
    // Loaded only here: with DATABASE_URL set, no command needs the embedded server's modules.
    const { startEmbeddedPostgres, withDatabase } = await import('../db/embedded.ts');
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
    await pingDatabase(pool);
  } catch (e) {
    await pool?.end().catch(() => {});
    await embedded?.stop();
    throw new TollgateError(
      'TG_DB_UNREACHABLE',
      `Cannot connect to PostgreSQL at ${maskUrl(url)}: ${(e as Error).message}. ` + 'Check DATABASE_URL (or unset it to use the embedded database).',
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

/**
 * Brings the database up to date before the app uses it: migrations as the owner, the app
 * login's grants when it is another role, the audit key's fingerprint, and a warning when the
 * app's login is privileged.
 */
export async function prepareDatabase(db: Database, log: Logger): Promise<void> {
  await migrateAndGrant(db, log);
  if (db.auditKey) await checkAuditKeyFingerprint(db.pool, db.auditKey);
  await warnIfPrivileged(db.pool, log);
}
