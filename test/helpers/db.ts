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
  const pool = createPool(url, opts.poolSize ?? 20, testLogger());
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
