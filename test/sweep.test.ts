import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { sweepStuckRuns } from '../src/runtime/sweep.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';

let db: TestDb;
let t: TestRuntime;
const once = defineWorkflow({
  name: 'once',
  version: 1,
  description: 'one step',
  input: z.object({}),
  run: async (ctx) => ctx.step('only', () => 'done'),
}) as unknown as WorkflowDefinition;

beforeAll(async () => {
  db = await createTestDb();
  t = await createTestRuntime(db, [once], { worker: false });
});
afterAll(async () => {
  await t.stop();
  await db.close();
});

describe('the stuck-run sweep', () => {
  it('leaves runs that have a job alone, and gives a run whose job was lost a new one', async () => {
    const run = await t.runtime.startRun({ workflow: 'once', input: {} });
    await db.pool.query(`UPDATE tollgate.runs SET updated_at = now() - interval '10 minutes' WHERE id = $1`, [run.id]);
    expect(await sweepStuckRuns(db.pool)).toEqual([]); // its job is still there

    // The job is lost (here: removed; in life: it used up its attempts while the database was down).
    await db.pool.query(`SELECT graphile_worker.remove_job('advance:' || $1::text)`, [run.id]);
    expect(await sweepStuckRuns(db.pool)).toEqual([run.id]);
    expect(await sweepStuckRuns(db.pool)).toEqual([]); // once is enough: it has a job again

    await t.startWorker();
    const done = await waitForRun(t.runtime, run.id, 'succeeded');
    expect(done.output).toBe('done');
    const types = (await t.runtime.getRun(run.id)).events.map((e) => e.type);
    expect(types).toContain('run.swept');
  });

  it('wakes a waiting run whose timer is long past and whose wake-up job is gone', async () => {
    const run = await t.runtime.startRun({ workflow: 'once', input: {} });
    await waitForRun(t.runtime, run.id, 'succeeded');
    // A waiting run, overdue, with no job (made by hand: the state a lost timer leaves behind).
    await db.pool.query(
      `INSERT INTO tollgate.runs (id, workflow, workflow_version, status, input, wait_reason, wake_at, updated_at)
       VALUES ('run_overdue', 'once', 1, 'waiting', '{}', 'sleep', now() - interval '1 hour', now() - interval '1 hour')`,
    );
    expect(await sweepStuckRuns(db.pool)).toEqual(['run_overdue']);
    expect((await waitForRun(t.runtime, 'run_overdue', 'succeeded')).output).toBe('done');
  });
});
