/**
 * A dead database connection never corrupts a run: when the executor's journal writes fail, the
 * run is not marked failed; it is resumed later. A step whose body had finished is not run again:
 * this process held its result and the resumed advance records it (src/runtime/step-attempt.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';

let db: TestDb;
let t: TestRuntime;
const keys: string[] = [];
const refusedKeys: string[] = [];

beforeAll(async () => {
  db = await createTestDb();
  await db.pool.query(`
    CREATE SEQUENCE refuse_once;
    CREATE FUNCTION refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.name = 'refused' AND NEW.status = 'succeeded' AND nextval('refuse_once') = 1 THEN
        RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001';
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER refuse_once BEFORE UPDATE ON tollgate.steps FOR EACH ROW EXECUTE FUNCTION refuse_once();`);
  const wf = defineWorkflow({
    name: 'cut',
    version: 1,
    description: 'loses its journal connection in the middle of a step',
    input: z.object({}),
    run: async (ctx) => {
      await ctx.step('before', () => 'ok');
      const cut = await ctx.step('cut', async ({ idempotencyKey }) => {
        keys.push(idempotencyKey);
        if (keys.length === 1) {
          // Kill the executor's connection (the one holding the run's advisory lock).
          await db.pool.query(
            `SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          );
        }
        return 'done';
      });
      // The database refuses this step's result once (a transient error); the connection lives on.
      // A step follows, so the refused write is the one that also starts it (the last step's
      // result, written with the run's end, is retried alone when that statement fails).
      await ctx.step('refused', ({ idempotencyKey }) => {
        refusedKeys.push(idempotencyKey);
        return 'recorded';
      });
      await ctx.step('after', () => 'ok');
      return cut;
    },
  }) as unknown as WorkflowDefinition;
  t = await createTestRuntime(db, [wf]);
});
afterAll(async () => {
  await t.stop();
  await db.close();
});

describe('journal connection lost during a step', () => {
  it('leaves the run unfailed (connection killed, or a transient error) and resumes it, recording the finished steps without running their bodies again', async () => {
    const run = await t.runtime.startRun({ workflow: 'cut', input: {} });
    const done = await waitForRun(t.runtime, run.id, ['succeeded', 'failed'], 30_000);
    expect(done.status).toBe('succeeded');
    expect(keys).toHaveLength(1);
    const detail = await t.runtime.getRun(run.id);
    expect(detail.events.map((e) => e.type)).not.toContain('run.failed');
    expect(detail.run.recovery_attempts).toBe(2);
    expect(detail.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['before', 'succeeded', 1],
      ['cut', 'succeeded', 1],
      ['refused', 'succeeded', 1],
      ['after', 'succeeded', 1],
    ]);
    expect(refusedKeys).toHaveLength(1);
  });
});
