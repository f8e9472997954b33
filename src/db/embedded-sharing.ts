/**
 * How the processes that share one embedded PostgreSQL data dir coordinate, through files in the
 * data dir (they outlive a crashed server, which advisory locks would not):
 *
 * - Users: each process using the server (whether it started it or found it running) keeps a
 *   lease file `<dataDir>/pg-users/<pid>-<random>.json` while it does. A process leaving the
 *   server stops it only when no other live process holds a lease: the server is
 *   reference-counted, so `tollgate run --wait` never stops it under an `npm start` that attached
 *   meanwhile, and whoever leaves last stops it, including a server whose starter was SIGKILLed.
 *   A lease whose pid is dead is ignored and removed.
 * - Starting: one process at a time starts (or restarts) the server, under the lock file
 *   `<dataDir>/pg-start.lock`, so two commands typed together do not both run initdb.
 *
 * Synchronous on purpose: a lease is also dropped from a process 'exit' handler.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { TollgateError } from '../common/errors.ts';

/** True when a process with this pid exists (EPERM: it does, but belongs to another user). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ServerUser {
  readonly pid: number;
  readonly command: string;
}

export interface Lease {
  readonly file: string;
  release(): void;
}

function usersDir(dataDir: string): string {
  return path.join(dataDir, 'pg-users');
}

/** Records this process as a user of the data dir's server until `release()`. */
export function registerUser(dataDir: string): Lease {
  const dir = usersDir(dataDir);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${process.pid}-${randomBytes(4).toString('hex')}.json`);
  const user: ServerUser = { pid: process.pid, command: process.argv.slice(1).join(' ') };
  writeFileSync(file, JSON.stringify(user));
  let released = false;
  return {
    file,
    release: () => {
      if (released) return;
      released = true;
      removeQuietly(file);
    },
  };
}

/** The live users other than `self`; leases of dead processes are removed on the way. */
export function otherLiveUsers(dataDir: string, self: Lease): ServerUser[] {
  const dir = usersDir(dataDir);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const users: ServerUser[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    if (file === self.file || !name.endsWith('.json')) continue;
    const pid = Number(name.split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || !isProcessAlive(pid)) {
      removeQuietly(file);
      continue;
    }
    let command = '';
    try {
      command = (JSON.parse(readFileSync(file, 'utf8')) as ServerUser).command ?? '';
    } catch {
      // Being written right now, or removed meanwhile: its pid is alive, so it counts.
    }
    users.push({ pid, command });
  }
  return users;
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone.
  }
}

/**
 * Runs `fn` while holding the data dir's start lock, waiting (up to `waitMs`) for another process
 * that holds it. A lock left by a dead process is taken over.
 */
export async function withStartLock<T>(dataDir: string, fn: () => Promise<T>, waitMs = 180_000): Promise<T> {
  const file = path.join(dataDir, 'pg-start.lock');
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      closeSync(openSync(file, 'wx'));
      writeFileSync(file, String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: number;
    try {
      holder = Number(readFileSync(file, 'utf8'));
    } catch {
      continue; // removed meanwhile: try again at once
    }
    // An empty file is a holder between creating and writing it; give it a moment.
    if (Number.isInteger(holder) && holder > 0 && !isProcessAlive(holder)) {
      removeQuietly(file);
      continue;
    }
    if (Date.now() > deadline) {
      throw new TollgateError(
        'TG_DB_EMBEDDED',
        `Another process (pid ${holder}) has been starting the embedded PostgreSQL in ${dataDir} for ${Math.round(waitMs / 1000)} s; stop it, or remove ${file} if no such process runs.`,
        { file, holder },
      );
    }
    await sleep(100);
  }
  try {
    return await fn();
  } finally {
    removeQuietly(file);
  }
}
