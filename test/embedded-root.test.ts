/**
 * As root, the embedded PostgreSQL runs as the `postgres` user. With a data dir that user cannot
 * enter (`mktemp -d` gives 0700), start-up failed with a raw initdb stack and left an empty `pg/`
 * behind. Tollgate's own data dir is now made enterable; a parent directory it does not own
 * stops start-up with one sentence naming it and the command to run. Not root: both start.
 */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedServer } from '../src/db/embedded.ts';
import { testLogger } from './helpers/log.ts';

const root = os.userInfo().uid === 0;
let dir: string | undefined;
let server: EmbeddedServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function selectOne(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one;
  } finally {
    await client.end();
  }
}

describe('embedded PostgreSQL in a 0700 data dir', () => {
  it('starts in a data dir made by mktemp -d (mode 0700)', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-0700-'));
    await fs.chmod(dir, 0o700);
    server = await startEmbeddedPostgres({ dataDir: dir, port: 0, log: testLogger(), supervision: false });
    expect(await selectOne(server.url)).toBe(1);
  }, 120_000);

  it('under a parent the postgres user cannot enter: one sentence naming it and what to run, and no pg/ left behind', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-0700-parent-'));
    await fs.chmod(dir, 0o700);
    const dataDir = path.join(dir, 'data');
    const started = startEmbeddedPostgres({ dataDir, port: 0, log: testLogger(), supervision: false });
    if (!root) {
      server = await started;
      expect(await selectOne(server.url)).toBe(1);
      return;
    }
    const error = await started.then(
      () => undefined,
      (e: unknown) => e as { code?: string; message: string },
    );
    expect(error).toMatchObject({ code: 'TG_DB_EMBEDDED' });
    expect(error!.message).toBe(
      `The embedded PostgreSQL runs as the "postgres" user (Tollgate runs as root), which cannot enter ${dir}: run "chmod o+x ${dir}", or set TOLLGATE_DATA_DIR to a directory it can reach.`,
    );
    expect(existsSync(path.join(dataDir, 'pg'))).toBe(false);
  }, 120_000);
});
