/**
 * How an event of a chat run schedules the re-rendering of its messages
 * (migrations/functions/chat_delivery.sql): one pending `chat-deliver` job per message key, added
 * in the event's own transaction. The events of one transaction share the job the first of them
 * scheduled; a job a worker already holds is never reused (its render may predate the event), and
 * a savepoint rolled back takes its scheduling with it, so the next event schedules again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../src/db/queries/events.ts';
import { insertQueuedRun } from '../src/db/queries/runs.ts';
import { withTransaction } from '../src/db/transaction.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.close();
});

let n = 0;
/** A queued run started from Slack (so listed in chat_runs), with its delivery jobs cleared. */
async function chatRun(): Promise<string> {
  const id = `run_enq${++n}`;
  await insertQueuedRun(
    db.pool,
    { id, workflow: 'demo', version: 1, input: {}, requester: null, origin: { platform: 'slack', tenant: 'T1', conversation: 'C1', thread: null } },
    null,
  );
  await db.pool.query(`DELETE FROM graphile_worker._private_jobs WHERE key = $1`, [`chat:run:${id}`]);
  return id;
}

async function deliveries(runId: string): Promise<{ key: string | null; revision: number; locked_at: Date | null }[]> {
  const { rows } = await db.pool.query(
    `SELECT j.key, j.revision, j.locked_at FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
      WHERE t.identifier = 'chat-deliver' AND j.payload->>'runId' = $1 ORDER BY j.id`,
    [runId],
  );
  return rows;
}

describe('chat delivery scheduling (chat_delivery.sql)', () => {
  it('the events of one transaction share one pending job, and each later transaction reuses the pending job', async () => {
    const runId = await chatRun();
    await withTransaction(db.pool, async (q) => {
      for (const type of ['step.started', 'step.succeeded', 'step.started']) await appendEvent(q, { runId, type, stepIdx: 0 });
    });
    expect(await deliveries(runId)).toEqual([{ key: `chat:run:${runId}`, revision: 0, locked_at: null }]);
    await appendEvent(db.pool, { runId, type: 'step.succeeded', stepIdx: 0 });
    expect(await deliveries(runId)).toEqual([{ key: `chat:run:${runId}`, revision: 1, locked_at: null }]);
  });

  it('an event after a worker took the pending job adds a fresh one and frees the key from the taken one', async () => {
    const runId = await chatRun();
    await appendEvent(db.pool, { runId, type: 'step.started', stepIdx: 0 });
    await db.pool.query(`UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = 'a-worker' WHERE key = $1`, [`chat:run:${runId}`]);
    await withTransaction(db.pool, async (q) => {
      await appendEvent(q, { runId, type: 'step.succeeded', stepIdx: 0 });
      await appendEvent(q, { runId, type: 'run.succeeded' });
    });
    const jobs = await deliveries(runId);
    expect(jobs.map((j) => [j.key, j.locked_at === null])).toEqual([
      [null, false],
      [`chat:run:${runId}`, true],
    ]);
  });

  it('a savepoint rolled back takes its job with it: the next event of the transaction schedules again', async () => {
    const runId = await chatRun();
    await withTransaction(db.pool, async (q) => {
      await q.query('SAVEPOINT s');
      await appendEvent(q, { runId, type: 'step.started', stepIdx: 0 });
      await q.query('ROLLBACK TO SAVEPOINT s');
      await appendEvent(q, { runId, type: 'step.started', stepIdx: 0 });
    });
    expect(await deliveries(runId)).toEqual([{ key: `chat:run:${runId}`, revision: 0, locked_at: null }]);
  });

  it('events of two runs in one transaction each schedule their own job', async () => {
    const a = await chatRun();
    const b = await chatRun();
    await withTransaction(db.pool, async (q) => {
      for (const runId of [a, b, a, b]) await appendEvent(q, { runId, type: 'step.started', stepIdx: 0 });
    });
    expect((await deliveries(a)).map((j) => j.key)).toEqual([`chat:run:${a}`]);
    expect((await deliveries(b)).map((j) => j.key)).toEqual([`chat:run:${b}`]);
  });
});
