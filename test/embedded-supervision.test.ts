/**
 * The embedded PostgreSQL is supervised: killed (SIGKILL, as the OOM killer would), it is started
 * again on the same port by the process using it, and a log line says so.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { findRunningServer, startEmbeddedPostgres, type EmbeddedServer } from '../src/db/embedded.ts';
import { createLogger } from '../src/common/log.ts';
import { poll } from './helpers/poll.ts';

let dir: string | undefined;
let server: EmbeddedServer | undefined;
afterAll(async () => {
  await server?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** One query on a fresh connection; the error when the server is not (yet) back. */
async function tryQuery(url: string): Promise<number | Error> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one;
  } catch (e) {
    return e as Error;
  } finally {
    await client.end().catch(() => {});
  }
}

describe('embedded PostgreSQL supervision', () => {
  it('a postmaster killed with SIGKILL is restarted on the same URL, and the restart is logged', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-supervise-'));
    await fs.chmod(dir, 0o755);
    const lines: string[] = [];
    const log = createLogger({ level: 'info', format: 'json', destination: { write: (s: string) => void lines.push(s) } });
    server = await startEmbeddedPostgres({ dataDir: dir, port: 0, log, supervision: { checkEveryMs: 200, firstDelayMs: 200 } });
    expect(await tryQuery(server.url)).toBe(1);
    const before = findRunningServer(path.join(dir, 'pg'));
    expect(before).toBeDefined();

    process.kill(before!.pid, 'SIGKILL');

    // Wait for it to come back: bounded by the supervisor's retries (6 attempts), not a timing claim.
    const url = server.url;
    const answer = await poll(
      async () => {
        const now = await tryQuery(url);
        if (now instanceof Error) throw now; // not back yet: retried, and reported if it never is
        return now === 1 && now;
      },
      { message: 'the restarted PostgreSQL to answer', timeoutMs: 90_000, intervalMs: 500 },
    );
    expect(answer).toBe(1);
    const after = findRunningServer(path.join(dir, 'pg'));
    expect(after?.pid).not.toBe(before!.pid);
    expect(after?.port).toBe(before!.port);
    const messages = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(messages).toContain('embedded PostgreSQL is not running; restarting it');
    expect(messages).toContain('embedded PostgreSQL restarted');
  }, 120_000);
});
