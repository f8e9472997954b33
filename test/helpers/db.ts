/**
 * A database of its own for each test file, on the run's one PostgreSQL, migrated like
 * production. `TestDb.url` can be handed to child processes (worker crash tests).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { ensureDatabase, createPool } from '../../src/db/connect.ts';
import { withDatabase } from '../../src/db/embedded.ts';
import { migrate } from '../../src/db/migrate.ts';
import { testLogger } from './log.ts';
import { auditKeyFromEnv } from '../../src/audit/key.ts';
import { type AuditKey } from '../../src/db/pool-key.ts';
import { grantAppRole } from '../../src/db/app-role.ts';

/**
 * The audit key of every test database (the chain is keyed: src/audit/key.ts). Exported into
 * the environment so child processes (worker fixtures, `tollgate` runs) use the same one; tests
 * that build an env for `loadConfig` spread TEST_AUDIT_ENV into it.
 */
export const TEST_AUDIT_KEY = '74657374206175646974206b657920666f7220746f6c6c676174652074657374';
export const TEST_AUDIT_ENV = { TOLLGATE_AUDIT_KEY: TEST_AUDIT_KEY } as const;
process.env.TOLLGATE_AUDIT_KEY ??= TEST_AUDIT_KEY;
export const testAuditKey = auditKeyFromEnv(TEST_AUDIT_KEY) as AuditKey;

export interface TestDb {
  readonly url: string;
  readonly pool: pg.Pool;
  close(): Promise<void>;
}

export async function createTestDb(opts: { migrate?: boolean; poolSize?: number } = {}): Promise<TestDb> {
  const maintenance = inject('pgUrl');
  const name = `t_${randomBytes(6).toString('hex')}`;
  await ensureDatabase(maintenance, name);
  const url = withDatabase(maintenance, name);
  const pool = createPool(url, opts.poolSize ?? 20, testLogger(), testAuditKey);
  if (opts.migrate !== false) await migrate(pool, testLogger());
  return {
    url,
    pool,
    close: async () => {
      await pool.end();
      const c = new pg.Client({ connectionString: maintenance });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {});
      await c.end();
    },
  };
}

/**
 * A login for `db` with exactly the application's grants (src/db/app-role.ts), as the embedded
 * set-up creates it: `pool` carries the audit key (the app), `keyless` does not (someone who
 * stole the app's database password but not the key).
 */
export async function createAppRole(db: TestDb): Promise<{ role: string; url: string; pool: pg.Pool; keyless: pg.Pool; close(): Promise<void> }> {
  const name = new URL(db.url).pathname.slice(1);
  const role = `app_${name}`;
  const password = randomBytes(12).toString('hex');
  await db.pool.query(`CREATE ROLE "${role}" LOGIN PASSWORD '${password}'`);
  await grantAppRole(db.pool, role);
  const url = new URL(db.url);
  url.username = role;
  url.password = password;
  const pool = createPool(url.toString(), 5, testLogger(), testAuditKey);
  const keyless = createPool(url.toString(), 2, testLogger());
  return {
    role,
    url: url.toString(),
    pool,
    keyless,
    close: async () => {
      await pool.end();
      await keyless.end();
      await db.pool.query(`DROP OWNED BY "${role}"`).catch(() => {});
      await db.pool.query(`DROP ROLE IF EXISTS "${role}"`).catch(() => {});
    },
  };
}
