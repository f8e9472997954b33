/**
 * src/db/queries/jobs.ts, the one door to Graphile Worker's add_job/add_jobs: a keyed job is
 * replaced, not doubled; a key race that adds nothing adds the job without a key, so it is never
 * lost; add_jobs adds one job per payload in one statement.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addJob, addJobs, ADVANCE_TASK } from '../src/db/queries/jobs.ts';
import { insertQueuedRun } from '../src/db/queries/runs.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.close();
});

async function jobsOf(task: string): Promise<{ payload: unknown; run_at: Date; key: string | null; max_attempts: number; locked_at: Date | null }[]> {
  const { rows } = await db.pool.query(
    `SELECT j.payload, j.run_at, j.key, j.max_attempts, j.locked_at FROM graphile_worker._private_jobs j
     JOIN graphile_worker._private_tasks t ON t.id = j.task_id WHERE t.identifier = $1 ORDER BY j.id`,
    [task],
  );
  return rows;
}

describe('jobs (src/db/queries/jobs.ts)', () => {
  it('adds a job with its payload, time and attempts; a second job of the same key replaces the first', async () => {
    const at1 = new Date(Date.now() + 3_600_000);
    const at2 = new Date(Date.now() + 1_800_000);
    await addJob(db.pool, 'test-keyed', { thing: 'a' }, { runAt: at1, jobKey: 'test:a', maxAttempts: 7 });
    await addJob(db.pool, 'test-keyed', { thing: 'b' }, { runAt: at2, jobKey: 'test:a', maxAttempts: 7 });
    const jobs = await jobsOf('test-keyed');
    expect(jobs.map((j) => [j.payload, j.run_at.getTime(), j.key, j.max_attempts])).toEqual([[{ thing: 'b' }, at2.getTime(), 'test:a', 7]]);
    await addJob(db.pool, 'test-plain', { n: 1 });
    expect((await jobsOf('test-plain')).map((j) => [j.payload, j.key, j.max_attempts])).toEqual([[{ n: 1 }, null, 25]]);
  });

  it('is never lost to the job key race: when add_job adds nothing, the job is added without a key', async () => {
    await addJob(db.pool, 'test-race', { v: 1 }, { runAt: new Date(Date.now() + 3_600_000), jobKey: 'test:race' });
    // A worker locks the pending keyed job between add_job's two statements (as in the outbox test).
    await db.pool.query(`
      CREATE FUNCTION public.race_lock_test() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF pg_trigger_depth() = 1 THEN
          UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = 'racing-worker' WHERE key = 'test:race';
        END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER race_test AFTER UPDATE ON graphile_worker._private_jobs
        FOR EACH STATEMENT EXECUTE FUNCTION public.race_lock_test();`);
    try {
      await addJob(db.pool, 'test-race', { v: 2 }, { jobKey: 'test:race' });
    } finally {
      await db.pool.query(`DROP TRIGGER race_test ON graphile_worker._private_jobs; DROP FUNCTION public.race_lock_test();`);
    }
    const unlocked = (await jobsOf('test-race')).filter((j) => j.locked_at === null);
    expect(unlocked.map((j) => [j.payload, j.key])).toEqual([[{ v: 2 }, null]]);
  });

  it('adds one job per payload, in order, with add_jobs', async () => {
    expect(await addJobs(db.pool, 'test-many', [{ i: 1 }, { i: 2 }, { i: 3 }], { maxAttempts: 10 })).toBe(3);
    expect(await addJobs(db.pool, 'test-many', [])).toBe(0);
    const jobs = await jobsOf('test-many');
    expect(jobs.map((j) => [j.payload, j.max_attempts])).toEqual([
      [{ i: 1 }, 10],
      [{ i: 2 }, 10],
      [{ i: 3 }, 10],
    ]);
  });

  it("adds a new run's advance job, keyed, and wakes the workers, both before and after its task has a row", async () => {
    const fresh = await createTestDb();
    const listener = await fresh.pool.connect();
    const notified: string[] = [];
    listener.on('notification', (m) => void notified.push(m.payload ?? ''));
    await listener.query('LISTEN "jobs:insert"');
    try {
      const start = (id: string) =>
        insertQueuedRun(fresh.pool, { id, workflow: 'w', version: 1, input: {}, requester: null, origin: { platform: 'cli' } }, null);
      // The first run of a fresh database: no job of the task was ever added, so it has no row yet.
      const before = await fresh.pool.query(`SELECT count(*)::int AS n FROM graphile_worker._private_tasks WHERE identifier = $1`, [ADVANCE_TASK]);
      expect(before.rows[0].n).toBe(0);
      await start('run_first');
      await start('run_second');
      const { rows } = await fresh.pool.query(
        `SELECT j.payload, j.key, j.max_attempts, j.priority, j.job_queue_id, j.flags, j.run_at <= now() AS due FROM graphile_worker._private_jobs j
         JOIN graphile_worker._private_tasks t ON t.id = j.task_id WHERE t.identifier = $1 ORDER BY j.id`,
        [ADVANCE_TASK],
      );
      const job = (runId: string) => ({
        payload: { runId },
        key: `advance:${runId}`,
        max_attempts: 25,
        priority: 0,
        job_queue_id: null,
        flags: null,
        due: true,
      });
      expect(rows).toEqual([job('run_first'), job('run_second')]);
      await fresh.pool.query('SELECT 1'); // the notifications arrive before the next round trip's answer
      await listener.query('SELECT 1');
      expect(notified.map((p) => (JSON.parse(p) as { count: number }).count)).toEqual([1, 1]);
    } finally {
      listener.release();
      await fresh.close();
    }
  });
});
