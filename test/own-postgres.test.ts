/**
 * docs/operations.md "Your own PostgreSQL, step by step", run as written: the test reads the
 * blocks marked `<!-- own-postgres:… -->` from the page, so it executes exactly what a reader
 * would copy. On a fresh PostgreSQL of its own it runs the superuser's SQL, then `tollgate
 * migrate` with the documented environment (the owner's login as DATABASE_MIGRATION_URL), then
 * `tollgate server`, two `tollgate worker`s and the CLI with ONLY their documented environments
 * (the app's login, no DATABASE_MIGRATION_URL): they finish runs, and `tollgate audit verify`
 * passes.
 *
 * The only changes made to the page's text: the placeholders it tells the reader to replace
 * (passwords, the audit key, the console token, `db.example.com:5432`). Beyond the page, each
 * process gets a sandbox's settings (a free port instead of 3000 and 9464, loopback, JSON logs, a
 * data dir that does not exist so nothing falls back to the embedded database), and PATH.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/common/log.ts';
import { startEmbeddedPostgres, withDatabase, type EmbeddedServer } from '../src/db/embedded.ts';
import { poll } from './helpers/poll.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const DOC = path.join(ROOT, 'docs/operations.md');

/** The fenced block right after `<!-- own-postgres:<name> -->` in docs/operations.md. */
async function docBlock(name: string): Promise<string> {
  const text = await fs.readFile(DOC, 'utf8');
  const marker = `<!-- own-postgres:${name} -->`;
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`docs/operations.md has no ${marker}`);
  const m = /^\s*```[a-z]*\n([\s\S]*?)\n```/.exec(text.slice(at + marker.length));
  if (!m) throw new Error(`no fenced block right after ${marker} in docs/operations.md`);
  return m[1] as string;
}

/** Replaces each placeholder the page names, failing if the block lacks one it should have. */
function fill(block: string, values: Record<string, string>, expected: string[]): string {
  for (const p of expected) expect(block, `the block should contain ${p}`).toContain(p);
  let out = block;
  // Whole words only: TOLLGATE_AUDIT_KEY is a name, not a placeholder.
  for (const [p, v] of Object.entries(values)) out = out.replace(new RegExp(`(?<![\\w.])${p.replace(/[.]/g, '\\.')}(?![\\w])`, 'g'), v);
  return out;
}

/** SQL statements one by one, as psql sends them (CREATE DATABASE cannot share a query string). */
function statements(sql: string): string[] {
  return sql
    .split('\n')
    .filter((l) => !l.trim().startsWith('--'))
    .join('\n')
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * A shell block's environment and command: `KEY=value` words (one a line, or before a command
 * with `\` continuations), `#` comments; the words after them are the command, if any.
 */
function shellBlock(block: string): { env: Record<string, string>; argv: string[] } {
  const words = block
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => !l.trim().startsWith('#'))
    .join(' ')
    .split(/\s+/)
    .filter((w) => w !== '');
  const env: Record<string, string> = {};
  let i = 0;
  for (; i < words.length && /^[A-Z_][A-Z0-9_]*=/.test(words[i] as string); i++) {
    const w = words[i] as string;
    env[w.slice(0, w.indexOf('='))] = w.slice(w.indexOf('=') + 1);
  }
  return { env, argv: words.slice(i) };
}

let dir: string;
const servers: EmbeddedServer[] = [];
const children: ChildProcess[] = [];
const secrets = {
  OWNER_PASSWORD: randomBytes(24).toString('hex'),
  APP_PASSWORD: randomBytes(24).toString('hex'),
  YOUR_AUDIT_KEY: randomBytes(32).toString('hex'),
  YOUR_CONSOLE_TOKEN: randomBytes(16).toString('hex'),
};

/** Each documented environment, filled in, plus the sandbox's settings and PATH: nothing else. */
function processEnv(documented: Record<string, string>, sandbox: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    TOLLGATE_DATA_DIR: path.join(dir, 'no-embedded-database'),
    LOG_FORMAT: 'json',
    ...documented,
    ...sandbox,
  };
}

function tollgate(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A long-running `tollgate <mode>`; its output is kept for failure messages. */
function serve(mode: 'server' | 'worker', env: NodeJS.ProcessEnv): { proc: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', mode], { cwd: ROOT, env });
  children.push(proc);
  let out = '';
  proc.stdout?.on('data', (d) => (out = (out + d).slice(-20_000)));
  proc.stderr?.on('data', (d) => (out = (out + d).slice(-20_000)));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, output: () => out, exited };
}

/** A fresh PostgreSQL of its own (the tests' shared one already has Tollgate's roles). */
async function freshServer(name: string): Promise<EmbeddedServer> {
  const dataDir = path.join(dir, name);
  await fs.mkdir(dataDir);
  await fs.chmod(dataDir, 0o755); // PostgreSQL runs as `postgres` when the tests run as root
  const started = await startEmbeddedPostgres({ dataDir, port: 0, log: createLogger({ level: 'warn', format: 'json' }) });
  servers.push(started);
  return started;
}

/** Runs SQL statements one by one as `url`'s login, as psql would. */
async function runSql(url: string, sql: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const s of sql) await client.query(s);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-own-pg-'));
  await fs.chmod(dir, 0o755);
});
afterAll(async () => {
  for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const s of servers) await s.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('your own PostgreSQL, set up as docs/operations.md says', () => {
  it('the superuser SQL, `tollgate migrate` as the owner, then a server, two workers and the CLI with only the app login finish runs, and audit verify passes', async () => {
    const server = await freshServer('superuser');
    const host = `127.0.0.1:${server.port}`;
    const values = { ...secrets, 'db.example.com:5432': host };
    const url = `postgres://tollgate_app:APP_PASSWORD@db.example.com:5432/tollgate`;

    // 1. As the fresh server's superuser, statement by statement as psql would.
    const superuserSql = fill(await docBlock('superuser'), values, ['OWNER_PASSWORD', 'APP_PASSWORD']);
    await runSql(server.url, statements(superuserSql));

    // The server's, the workers' and the CLI's documented environments: the app's login only.
    const envOf = async (name: string, placeholders: string[]) => {
      const block = shellBlock(fill(await docBlock(`env:${name}`), values, placeholders));
      expect(block.argv).toEqual([]);
      expect(block.env.DATABASE_URL).toBe(fill(url, values, []));
      expect(block.env).not.toHaveProperty('DATABASE_MIGRATION_URL');
      return block.env;
    };
    const serverEnv = await envOf('server', ['APP_PASSWORD', 'YOUR_AUDIT_KEY', 'YOUR_CONSOLE_TOKEN']);
    const workerEnv = await envOf('worker', ['APP_PASSWORD', 'YOUR_AUDIT_KEY']);
    const cliEnv = processEnv(await envOf('cli', ['APP_PASSWORD', 'YOUR_AUDIT_KEY']));

    // Before step 2, the app's login may not create the schema: a command says what to run instead.
    const early = await tollgate(['runs', 'list'], cliEnv);
    expect(early.code).toBe(1);
    expect(early.stderr).toContain('may not migrate it');
    expect(early.stderr).toContain('Run `tollgate migrate` with DATABASE_MIGRATION_URL');
    expect(early.stderr).not.toMatch(/\n\s+at /); // a sentence, not a stack

    // 2. `tollgate migrate`, exactly the documented command line.
    const migrate = shellBlock(fill(await docBlock('migrate'), values, ['OWNER_PASSWORD', 'APP_PASSWORD', 'YOUR_AUDIT_KEY', 'db.example.com:5432']));
    expect(migrate.argv).toEqual(['tollgate', 'migrate']);
    expect(migrate.env.DATABASE_MIGRATION_URL).toMatch(/^postgres:\/\/tollgate_owner:/);
    const migrated = await tollgate(migrate.argv.slice(1), processEnv(migrate.env));
    expect(migrated.stdout, migrated.stderr).toContain('Database is up to date.');
    expect(migrated.code).toBe(0);

    // 3. The server and two workers with only the app login; then the CLI.
    const httpServer = serve('server', processEnv(serverEnv, { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info' }));
    const workers = [1, 2].map(() => serve('worker', processEnv(workerEnv, { WORKER_METRICS_PORT: '0' })));
    const all = [httpServer, ...workers];
    const outputs = () => all.map((p, i) => `--- process ${i} ---\n${p.output()}`).join('\n');

    const base = await poll(() => /"url":"(http:\/\/[^"]+)"/.exec(httpServer.output())?.[1], {
      message: 'tollgate server to listen',
      timeoutMs: 90_000,
      detail: outputs,
    });
    await poll(async () => (await fetch(`${base}/readyz`)).status === 200, { message: 'the server /readyz to answer 200', timeoutMs: 30_000, detail: outputs });

    // Watched through the superuser, who is no part of the deployment.
    const watch = new pg.Client({ connectionString: withDatabase(server.url, 'tollgate') });
    await watch.connect();
    try {
      await poll(async () => (await watch.query('SELECT count(*)::int AS n FROM tollgate.worker_heartbeats')).rows[0].n === 2, {
        message: 'both workers to beat',
        timeoutMs: 90_000,
        detail: outputs,
      });

      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        const started = await tollgate(['run', 'demo', `name=own-pg-${i}`, 'sleepMs=50', '--json'], cliEnv);
        expect(started.stderr).toBe('');
        expect(started.code).toBe(0);
        ids.push((JSON.parse(started.stdout) as { id: string }).id);
      }
      await poll(
        async () => {
          const { rows } = await watch.query<{ status: string }>('SELECT status FROM tollgate.runs WHERE id = ANY($1)', [ids]);
          return rows.length === ids.length && rows.every((r) => r.status === 'succeeded');
        },
        { message: 'the four runs to succeed', timeoutMs: 60_000, detail: outputs },
      );

      const shown = await tollgate(['runs', 'show', ids[0] as string, '--json'], cliEnv);
      expect(shown.code).toBe(0);
      expect(JSON.parse(shown.stdout).run).toMatchObject({ id: ids[0], status: 'succeeded' });

      const verified = await tollgate(['audit', 'verify', '--json'], cliEnv);
      expect(verified.stderr).toBe('');
      expect(verified.code).toBe(0);
      expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true });

      // The grant the old instructions left out: retention vacuums as the app's login (PostgreSQL 17+).
      const maintain = await watch.query<{ v: number; ok: boolean }>(
        "SELECT current_setting('server_version_num')::int AS v, has_table_privilege('tollgate_app', 'tollgate.events', 'MAINTAIN') AS ok",
      );
      if ((maintain.rows[0]?.v ?? 0) >= 170000) expect(maintain.rows[0]?.ok).toBe(true);

      // Nothing but the app's login is connected to Tollgate's database (the watcher aside).
      const logins = await watch.query<{ usename: string }>(
        'SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND usename IS NOT NULL',
        ['tollgate'],
      );
      expect(logins.rows.map((r) => r.usename)).toEqual(['tollgate_app']);
    } finally {
      await watch.end();
    }

    for (const p of all) p.proc.kill('SIGTERM');
    expect(await Promise.all(all.map((p) => p.exited))).toEqual([0, 0, 0]);
  }, 300_000);

  it('on a managed server, an administrator with CREATEROLE and CREATEDB runs the same block with the GRANT the page adds for it', async () => {
    const managed = await freshServer('managed');
    const adminUrl = new URL(managed.url);
    adminUrl.username = 'cloud_admin';
    adminUrl.password = randomBytes(12).toString('hex');
    await runSql(managed.url, [`CREATE ROLE cloud_admin LOGIN CREATEROLE CREATEDB PASSWORD '${adminUrl.password}'`]);

    // The page's sentence, its line breaks aside.
    const grant = 'GRANT tollgate_owner TO CURRENT_USER;';
    expect((await fs.readFile(DOC, 'utf8')).replace(/\s+/g, ' ')).toContain(`\`${grant}\` after its first line`);
    const block = statements(fill(await docBlock('superuser'), secrets, ['OWNER_PASSWORD', 'APP_PASSWORD']));

    // As written, the database cannot be given to the owner: the error the page quotes.
    await expect(runSql(adminUrl.toString(), block)).rejects.toThrow('must be able to SET ROLE "tollgate_owner"');
    await runSql(managed.url, ['DROP ROLE tollgate_owner']); // what that first try created

    // With the GRANT after the first line, the whole block goes through.
    await runSql(adminUrl.toString(), [block[0] as string, grant.replace(/;$/, ''), ...block.slice(1)]);
    const su = new pg.Client({ connectionString: managed.url });
    await su.connect();
    try {
      const db = await su.query("SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = 'tollgate'");
      expect(db.rows).toEqual([{ owner: 'tollgate_owner' }]);
      const roles = await su.query("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN ('tollgate_owner', 'tollgate_app') ORDER BY rolname");
      expect(roles.rows).toEqual([
        { rolname: 'tollgate_app', rolcanlogin: true },
        { rolname: 'tollgate_owner', rolcanlogin: true },
      ]);
    } finally {
      await su.end();
    }
  }, 120_000);
});
