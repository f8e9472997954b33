/**
 * Least privilege: the application connects as a role that owns nothing and may do only what it
 * needs, while migrations run as the schema's owner.
 *
 * - Embedded PostgreSQL: the superuser of `<dataDir>/credentials.json` runs migrations and
 *   creates the login `tollgate_app` (its password kept in the same file); the app's pool uses it.
 * - DATABASE_URL: the app's login; DATABASE_MIGRATION_URL, when set, is the owner's, used for
 *   migrations only, after which the app's login gets the grants below (docs/operations.md "Database roles").
 *
 * Grants are re-applied after every migration run (new tables appear), idempotently. On
 * tollgate.events the app may only SELECT, INSERT and UPDATE (payload) (retention's purge); the
 * chain heads, the checkpoint queue and the key fingerprint are written only by SECURITY DEFINER
 * functions of the owner. No ownership, no TRIGGER, no TRUNCATE: the app's login cannot disable
 * the append-only trigger.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '../common/log.ts';
import type { AuditKey } from './pool-key.ts';
import { migrate } from './migrate.ts';
import { withTransaction } from './transaction.ts';

export const APP_ROLE = 'tollgate_app';

/** Tables the app only reads (written by migrations or by the owner's functions). */
const READ_ONLY = ['migrations', 'function_files', 'audit_key', 'event_chains', 'audit_pending'];

function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** The statements that give `role` what the application needs, and nothing more (docs/operations.md lists them). */
export function appGrantStatements(role: string): string[] {
  const r = ident(role);
  return [
    `GRANT CONNECT, TEMPORARY ON DATABASE ${ident('__DATABASE__')} TO ${r}`,
    `GRANT USAGE ON SCHEMA tollgate, graphile_worker TO ${r}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tollgate TO ${r}`,
    `REVOKE INSERT, UPDATE, DELETE ON ${READ_ONLY.map((t) => `tollgate.${t}`).join(', ')} FROM ${r}`,
    `REVOKE UPDATE, DELETE ON tollgate.events FROM ${r}`,
    `GRANT UPDATE (payload) ON tollgate.events TO ${r}`,
    `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA tollgate TO ${r}`,
    `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tollgate TO ${r}`,
    // Retention vacuums what it purged (src/audit/retention.ts); VACUUM needs the owner, or from
    // PostgreSQL 17 the MAINTAIN privilege (older servers: autovacuum alone reclaims the space).
    `DO $$ BEGIN
       IF current_setting('server_version_num')::int >= 170000 THEN
         EXECUTE 'GRANT MAINTAIN ON tollgate.events, tollgate.steps, tollgate.runs, tollgate.approvals TO ' || quote_ident(${literal(role)});
       END IF;
     END $$`,
    // Graphile Worker's private schema is the queue itself: the worker reads and writes all of it.
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA graphile_worker TO ${r}`,
    `GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA graphile_worker TO ${r}`,
    `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA graphile_worker TO ${r}`,
    // Graphile Worker enables row-level security on its tables (no policy: only their owner gets
    // through); the app's role gets a policy letting it use every row, on each such table.
    `DO $$
     DECLARE t record;
     BEGIN
       FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'graphile_worker' AND c.relkind = 'r' AND c.relrowsecurity
                   AND NOT EXISTS (SELECT 1 FROM pg_policies p WHERE p.schemaname = 'graphile_worker' AND p.tablename = c.relname
                                   AND p.policyname = ${literal(`app ${role}`)}) LOOP
         EXECUTE format('CREATE POLICY %I ON graphile_worker.%I TO %I USING (true) WITH CHECK (true)', ${literal(`app ${role}`)}, t.relname, ${literal(role)});
       END LOOP;
     END $$`,
  ];
}

/**
 * Applies the grants to `role` through the owner's pool, in one transaction under a lock:
 * concurrent GRANTs on the same object fail with "tuple concurrently updated". Skipped when the
 * role can already read every table and has its policies (nothing was added since): CREATE
 * POLICY locks the queue's tables, which a running worker is using.
 */
export async function grantAppRole(owner: pg.Pool, role: string): Promise<void> {
  if (await grantsCurrent(owner, role)) return;
  for (let attempt = 1; ; attempt++) {
    try {
      await withTransaction(owner, async (q) => {
        await q.query("SELECT pg_advisory_xact_lock(x'74676772'::int)"); // 'tggr'
        const db = (await q.query<{ d: string }>('SELECT current_database() AS d')).rows[0]?.d as string;
        for (const sql of appGrantStatements(role)) await q.query(sql.replace(ident('__DATABASE__'), ident(db)));
      });
      return;
    } catch (e) {
      // A worker's queue queries and CREATE POLICY's table lock can deadlock; PostgreSQL picks
      // one to fail, and the grants are idempotent.
      if ((e as { code?: string }).code !== '40P01' || attempt >= 5) throw e;
    }
  }
}

async function grantsCurrent(owner: pg.Pool, role: string): Promise<boolean> {
  const { rows } = await owner.query<{ missing: string }>(
    `SELECT count(*)::text AS missing FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname IN ('tollgate', 'graphile_worker') AND c.relkind IN ('r', 'p')
        AND (NOT has_table_privilege($1, c.oid, 'SELECT')
             OR (c.relrowsecurity AND NOT EXISTS (SELECT 1 FROM pg_policies p WHERE p.schemaname = n.nspname AND p.tablename = c.relname AND p.policyname = $2)))`,
    [role, `app ${role}`],
  );
  return rows[0]?.missing === '0';
}

interface Credentials {
  user: string;
  password: string;
  app?: { user: string; password: string };
}

/**
 * Embedded set-up: makes sure the login `tollgate_app` exists with the password kept in
 * `<dataDir>/credentials.json` (generated once), and returns the app's URL on `ownerUrl`'s server
 * and database.
 */
export async function ensureEmbeddedAppRole(dataDir: string, ownerUrl: string): Promise<string> {
  const file = path.join(dataDir, 'credentials.json');
  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  let app: { user: string; password: string };
  try {
    // One process at a time (all processes of a data dir share its server): the password written
    // to the file and the role's password must be the same one.
    await client.query("SELECT pg_advisory_lock(x'74676172'::int)"); // 'tgar'
    const creds = JSON.parse(await fs.readFile(file, 'utf8')) as Credentials;
    if (!creds.app) {
      creds.app = { user: APP_ROLE, password: randomBytes(18).toString('base64url') };
      const tmp = `${file}.${process.pid}.tmp`;
      await fs.writeFile(tmp, JSON.stringify(creds), { mode: 0o600 });
      await fs.rename(tmp, file);
    }
    app = creds.app;
    const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [app.user]);
    const attrs = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '${app.password.replace(/'/g, "''")}'`;
    await client.query(exists.rowCount ? `ALTER ROLE ${ident(app.user)} ${attrs}` : `CREATE ROLE ${ident(app.user)} ${attrs}`);
  } finally {
    await client.end(); // ends the session, and with it the advisory lock
  }
  const url = new URL(ownerUrl);
  url.username = encodeURIComponent(app.user);
  url.password = encodeURIComponent(app.password);
  return url.toString();
}

/** What the app's login may do that it should not: logged once at start-up. */
export async function warnIfPrivileged(pool: pg.Pool, log: Logger): Promise<void> {
  const { rows } = await pool.query<{ login: string; superuser: boolean; owns_events: boolean }>(
    `SELECT current_user AS login,
            (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
            coalesce((SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class WHERE oid = to_regclass('tollgate.events')), false) AS owns_events`,
  );
  const r = rows[0];
  if (!r || (!r.superuser && !r.owns_events)) return;
  log.warn(
    { login: r.login, superuser: r.superuser, ownsEvents: r.owns_events },
    `Tollgate's database login "${r.login}" ${r.superuser ? 'is a superuser' : 'owns tollgate.events'}: whoever holds it can disable the ` +
      'audit triggers and rewrite the event log. `tollgate audit verify` still detects changes made without the audit key, ' +
      'but run the app as a role with only the grants Tollgate applies (DATABASE_URL) and migrate as the owner (DATABASE_MIGRATION_URL): ' +
      'docs/operations.md, "Your own PostgreSQL, step by step".',
  );
}

/**
 * Brings the database up to date before the app uses it: migrations as the owner, and the app
 * login's grants when it is another role. The boot (src/boot/database.ts) then checks the audit
 * key's fingerprint and warns when the app's login is privileged.
 */
export async function migrateAndGrant(db: { pool: pg.Pool; ownerUrl?: string; url: string; auditKey?: AuditKey }, log: Logger): Promise<void> {
  const separateOwner = db.ownerUrl !== undefined && db.ownerUrl !== db.url;
  const owner = separateOwner ? new pg.Pool({ connectionString: db.ownerUrl, max: 2, ...(db.auditKey ? { options: db.auditKey.pgOptions } : {}) }) : db.pool;
  if (separateOwner) {
    // As createPool does (Graphile Worker, migrating through this pool, checks for both).
    owner.on('error', (err) => log.warn({ err: err.message }, 'idle PostgreSQL connection lost (migrations)'));
    owner.on('connect', (client) => client.on('error', (err) => log.warn({ err: err.message }, 'PostgreSQL connection lost (migrations)')));
  }
  try {
    await migrate(owner, log);
    if (separateOwner) {
      const role = (await db.pool.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u as string;
      const ownerRole = (await owner.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u as string;
      if (role !== ownerRole) await grantAppRole(owner, role);
    }
  } finally {
    if (separateOwner) await owner.end().catch(() => {});
  }
}
