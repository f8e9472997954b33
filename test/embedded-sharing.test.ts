/**
 * Processes sharing one embedded PostgreSQL data dir, each a real process like a CLI command or
 * `npm start` (test/fixtures/embedded-user.ts), plus this test process as one more user.
 *
 * - `tollgate run --wait` started the server, `npm start` attached, the CLI exited and stopped
 *   PostgreSQL under `npm start`, whose /readyz stayed 503.
 * - A postmaster whose starter was SIGKILLed was never stopped by anyone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { findRunningServer, startEmbeddedPostgres } from '../src/db/embedded.ts';
import { isProcessAlive } from '../src/db/embedded-sharing.ts';
import { testLogger } from './helpers/log.ts';
import { poll } from './helpers/poll.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

interface User {
  child: ChildProcess;
  info: { port: number; owned: boolean; url: string };
  exited: Promise<number | null>;
}

/** Starts a fixture process using `dataDir`'s server; resolves once it has connected. */
async function startUser(dataDir: string): Promise<User> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/embedded-user.ts', dataDir], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-5000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const info = await new Promise<User['info']>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolve(JSON.parse(line) as User['info']);
    });
    child.once('exit', (code) => reject(new Error(`embedded-user exited with ${code} before connecting:\n${err}`)));
  });
  return { child, info, exited };
}

async function query(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one;
  } finally {
    await client.end();
  }
}

let dataDir: string;
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  // Whatever the outcome, no postmaster outlives the test.
  const running = findRunningServer(path.join(dataDir, 'pg'));
  if (running) {
    process.kill(running.pid, 'SIGINT');
    await poll(() => !isProcessAlive(running.pid), { message: `the postmaster (pid ${running.pid}) to exit`, timeoutMs: 120_000, intervalMs: 100 });
  }
  await fs.rm(dataDir, { recursive: true, force: true });
});

async function freshDataDir(): Promise<string> {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-share-'));
  await fs.chmod(dataDir, 0o755);
  return dataDir;
}

describe('a shared embedded PostgreSQL', () => {
  it('a short command that started the server does not stop it under a process that attached meanwhile; the last to leave stops it', async () => {
    const dir = await freshDataDir();
    const cli = await startUser(dir);
    children.push(cli.child);
    expect(cli.info.owned).toBe(true);
    const postmaster = findRunningServer(path.join(dir, 'pg'));
    expect(postmaster).toBeDefined();

    // `npm start` attaches to the server the CLI command started.
    const app = await startEmbeddedPostgres({ dataDir: dir, port: 0, log: testLogger() });
    expect(app.owned).toBe(false);
    expect(app.port).toBe(cli.info.port);
    expect(await query(app.url)).toBe(1);

    // The CLI command finishes.
    cli.child.stdin?.write('stop\n');
    expect(await cli.exited).toBe(0);

    // The app's database is still there: the same postmaster, never stopped.
    expect(await query(app.url)).toBe(1);
    expect(findRunningServer(path.join(dir, 'pg'))?.pid).toBe(postmaster!.pid);

    // The app, now the only user, stops the server when it leaves.
    await app.stop();
    expect(isProcessAlive(postmaster!.pid)).toBe(false);
    expect(existsSync(path.join(dir, 'pg', 'postmaster.pid'))).toBe(false);
  }, 120_000);

  it('commands started together on a fresh data dir: one creates and starts the server, the others wait and use it', async () => {
    const dir = await freshDataDir();
    const users = await Promise.all([startUser(dir), startUser(dir), startUser(dir)]);
    children.push(...users.map((u) => u.child));
    expect(users.filter((u) => u.info.owned)).toHaveLength(1);
    expect(new Set(users.map((u) => u.info.port)).size).toBe(1);
    for (const u of users) expect(await query(u.info.url)).toBe(1);
    for (const u of users) u.child.stdin?.write('stop\n');
    expect(await Promise.all(users.map((u) => u.exited))).toEqual([0, 0, 0]);
    expect(findRunningServer(path.join(dir, 'pg'))).toBeUndefined();
  }, 180_000);

  it('a postmaster whose starter was SIGKILLed is adopted and stopped by the next process on SIGTERM', async () => {
    const dir = await freshDataDir();
    const first = await startUser(dir);
    children.push(first.child);
    expect(first.info.owned).toBe(true);
    const postmaster = findRunningServer(path.join(dir, 'pg'));
    expect(postmaster).toBeDefined();

    first.child.kill('SIGKILL');
    await first.exited;
    expect(isProcessAlive(postmaster!.pid)).toBe(true); // orphaned, still serving

    const next = await startUser(dir);
    children.push(next.child);
    expect(next.info.port).toBe(first.info.port);
    expect(await query(next.info.url)).toBe(1);

    next.child.kill('SIGTERM');
    expect(await next.exited).toBe(0);
    expect(isProcessAlive(postmaster!.pid)).toBe(false);
    expect(existsSync(path.join(dir, 'pg', 'postmaster.pid'))).toBe(false);
  }, 120_000);
});
