/**
 * Telling a gone process from a live one on the same machine (src/common/process-stamp.ts), and
 * the reaper acting on it at once (src/worker/worker.ts `reapDeadWorkers`): a heartbeat that names
 * this host and a pid that no longer exists, or a pid now held by a later process, is dead now;
 * a live process, another host or a row without a stamp keeps the timeout (no false alarms).
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { makeWorkerUtils } from 'graphile-worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isGoneHere, thisProcessStamp } from '../src/common/process-stamp.ts';
import { createLogger } from '../src/common/log.ts';
import { graphileLogger, reapDeadWorkers } from '../src/worker/worker.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.close();
});

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.once('exit', r));
  return child.pid as number;
}

describe('whether the process a row names is gone', () => {
  const host = os.hostname();
  const stamp = thisProcessStamp();
  const [boot, ns] = (stamp ?? '').split('/');

  it('stamps this process on Linux (boot id, pid namespace, start time)', () => {
    expect(stamp).toMatch(/^[0-9a-f-]+\/pid:\[\d+\]\/\d+$/);
  });

  it('says gone for a free pid or a reused one, and never for a live process, another host, another pid namespace or a row without a stamp', async () => {
    const dead = await deadPid();
    expect(isGoneHere({ hostname: host, pid: dead, stamp: `${boot}/${ns}/12345` })).toBe(true);
    // This pid, but a process that started at another time: the pid was reused.
    expect(isGoneHere({ hostname: host, pid: process.pid, stamp: `${boot}/${ns}/1` })).toBe(true);
    expect(isGoneHere({ hostname: host, pid: process.pid, stamp })).toBe(false);
    expect(isGoneHere({ hostname: 'elsewhere', pid: dead, stamp: `${boot}/${ns}/12345` })).toBe(false);
    expect(isGoneHere({ hostname: host, pid: dead, stamp: `${boot}/pid:[1]/12345` })).toBe(false);
    expect(isGoneHere({ hostname: host, pid: dead, stamp: `another-boot/${ns}/12345` })).toBe(false);
    expect(isGoneHere({ hostname: host, pid: dead, stamp: null })).toBe(false);
  });

  it('lets the reaper unlock the jobs of a gone process of this machine at once, its heartbeat still fresh, and leaves a live one alone', async () => {
    const log = createLogger({ level: 'silent', format: 'json' });
    const utils = await makeWorkerUtils({ pgPool: db.pool, logger: graphileLogger(log) });
    try {
      const gone = await utils.addJob('nobody-runs-this', {});
      const live = await utils.addJob('nobody-runs-this', {});
      await db.pool.query(
        `UPDATE graphile_worker._private_jobs SET locked_by = CASE id WHEN $1::bigint THEN 'pool-gone' ELSE 'pool-live' END, locked_at = now()
         WHERE id IN ($1::bigint, $2::bigint)`,
        [gone.id, live.id],
      );
      await db.pool.query(
        `INSERT INTO tollgate.worker_heartbeats (process_id, hostname, pid, worker_ids, process_stamp) VALUES
           ('gone-1', $1, $2, ARRAY['pool-gone'], $3), ('live-1', $1, $4, ARRAY['pool-live'], $5)`,
        [host, await deadPid(), `${boot}/${ns}/12345`, process.pid, stamp],
      );
      // A liveness window of an hour: only the pid can tell.
      const unlocked = await reapDeadWorkers(db.pool, utils, 3_600_000, log, 'me');
      expect(unlocked).toEqual(['pool-gone']);
      const { rows } = await db.pool.query<{ id: string; locked_by: string | null }>(
        'SELECT id::text, locked_by FROM graphile_worker._private_jobs WHERE id IN ($1::bigint, $2::bigint) ORDER BY id',
        [gone.id, live.id],
      );
      expect(rows.map((r) => r.locked_by)).toEqual([null, 'pool-live']);
      const { rows: beats } = await db.pool.query<{ process_id: string }>('SELECT process_id FROM tollgate.worker_heartbeats ORDER BY process_id');
      expect(beats.map((r) => r.process_id)).toEqual(['live-1']);
    } finally {
      await db.pool.query(
        "DELETE FROM graphile_worker._private_jobs WHERE task_id = (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'nobody-runs-this')",
      );
      await utils.release();
    }
  });
});
