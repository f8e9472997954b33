/**
 * A real `tollgate start` child process on a test database, for tests of what a process does at
 * its door and when it is told to stop: its URL once it listens, its output (JSON logs), when it
 * exited, and how many TCP connections it holds open on its HTTP port (read from /proc).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { poll } from './poll.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface AppProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly url: string;
  readonly port: number;
  /** Everything it wrote (stdout and stderr). */
  output(): string;
  /** Its JSON log lines, parsed. */
  logLines(): Record<string, unknown>[];
  /** Resolves with the exit code (or -1 after a signal) and the time it exited (Date.now()). */
  readonly exited: Promise<{ code: number; at: number }>;
  /** Server-side TCP connections it holds on its HTTP port (not its listening socket). */
  openConnections(): Promise<number>;
  kill(signal: NodeJS.Signals): void;
}

export async function startAppProcess(env: Record<string, string | undefined>): Promise<AppProcess> {
  const childEnv = { ...process.env, PORT: '0', LOG_FORMAT: 'json', LOG_LEVEL: 'info', ...env } as NodeJS.ProcessEnv;
  for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start'], { cwd: ROOT, env: childEnv });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code: code ?? (signal ? -1 : 0), at: Date.now() })),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  const url = await poll(
    () => {
      if (gone) throw new Error('tollgate start exited before it listened');
      return /"url":"(http:\/\/[^"]+)"/.exec(out)?.[1];
    },
    { message: 'tollgate start to listen', timeoutMs: 90_000, retryErrors: false, detail: () => out.slice(-6000) },
  );
  const port = Number(new URL(url).port);
  const pid = child.pid as number;
  return {
    child,
    pid,
    url,
    port,
    output: () => out,
    logLines: () =>
      out.split('\n').flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
    exited,
    openConnections: () => countConnections(pid, port),
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** TCP sockets of `pid` whose local port is `port`, other than the listening one. */
async function countConnections(pid: number, port: number): Promise<number> {
  const inodes = new Set<string>();
  for (const fd of await fs.readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const link = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) inodes.add(m[1] as string);
  }
  let n = 0;
  for (const table of ['tcp', 'tcp6']) {
    const text = await fs.readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      if (!local || cols[3] === '0A') continue; // 0A: LISTEN
      if (parseInt(local.split(':')[1] ?? '', 16) === port && inodes.has(cols[9] ?? '')) n++;
    }
  }
  return n;
}
