/**
 * Poison runs: a run whose advance is interrupted every time (its worker dies, or loses the run,
 * in the same step) is recovered up to the limit and then dead-lettered: not advanced or swept
 * again, explained by `tollgate runs show`, and taken out by `tollgate runs retry` (or cancel).
 *
 * The crash is simulated, deterministically and without killing processes: the poison step kills
 * its executor's database connection (the one holding the run's advisory lock), so the advance
 * ends the way a dead worker's does, leaving the run 'running' with the step started and
 * unfinished. The next advance is then a real recovery through the real claim.
 */
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { main } from '../src/cli/main.ts';
import { loadConfig } from '../src/config/config.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { sweepStuckRuns } from '../src/runtime/sweep.ts';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { buildRunView, ACTION_IDS } from '../src/views/run-view.ts';
import { testLogger } from './helpers/log.ts';
import { useTestRuntimes } from './helpers/runtime.ts';
import { TEST_AUDIT_ENV } from './helpers/db.ts';

const MAX_RECOVERIES = 2;

const env = useTestRuntimes();

/** Whether the step "boom" still kills its worker; a test "deploys the fix" by clearing it. */
let poisoned = true;
const executed: string[] = [];

const poison = defineWorkflow({
  name: 'poison',
  version: 1,
  description: 'its second step kills the worker running it, until fixed',
  input: z.object({}),
  run: async (ctx) => {
    await ctx.step('before', () => {
      executed.push('before');
      return 'ok';
    });
    const boom = await ctx.step('boom', async ({ attempt }) => {
      executed.push(`boom#${attempt}`);
      if (poisoned) {
        // What a worker crash does to the run: its executor's connection, and with it the run's
        // advisory lock, is gone mid-step; nothing more of this advance reaches the journal, and
        // the body never finishes (a body that finished would have its result held and recorded
        // by the next advance in this process: src/runtime/step-attempt.ts).
        await env.db.pool.query(
          `SELECT pg_terminate_backend(pid) FROM pg_locks
           WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        );
        throw new Error('the worker died in this step');
      }
      return 'survived';
    });
    return { boom };
  },
}) as unknown as WorkflowDefinition;

/** A runtime with the limit under test, no worker: the test drives each advance itself. */
function makeRuntime(): Runtime {
  return new Runtime({
    pool: env.db.pool,
    registry: new WorkflowRegistry().register(poison),
    log: testLogger(),
    maxRecoveries: MAX_RECOVERIES,
  });
}

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(
    ['node', 'tollgate', ...args],
    { out: (s) => (out += `${s}\n`), err: (s) => (err += s) },
    {
      DATABASE_URL: env.db.url,
      ...TEST_AUDIT_ENV,
      LOG_LEVEL: 'silent',
      TOLLGATE_DATA_DIR: '/nonexistent-tollgate-cli-test',
    },
  );
  return { code, out, err };
}

/** Starts a poison run and advances it until it is dead-lettered; returns its id. */
async function deadLetteredRun(runtime: Runtime): Promise<string> {
  poisoned = true;
  executed.length = 0;
  // Started by this shell's OS user, who may therefore retry it with `tollgate runs retry`.
  const run = await runtime.startRun({ workflow: 'poison', input: {}, requester: { platform: 'cli', tenant: os.hostname(), user: os.userInfo().username } });
  // The first advance, then one per allowed recovery: each is interrupted in "boom".
  for (let i = 0; i <= MAX_RECOVERIES; i++) {
    await expect(runtime.advance(run.id, `worker-${i}`)).rejects.toMatchObject({ code: 'TG_DB_UNREACHABLE' });
    const { run: row } = await runtime.getRun(run.id);
    expect(row).toMatchObject({ status: 'running', recovery_attempts: i });
  }
  // Interrupted once more than the limit allows recovering: set aside instead of resumed.
  expect(await runtime.advance(run.id, 'worker-last')).toBe('dead-lettered');
  return run.id;
}

describe('poison runs', () => {
  it('reads the recovery limit from TOLLGATE_MAX_RECOVERIES, 5 by default', () => {
    expect(loadConfig({}).runtime.maxRecoveries).toBe(5);
    expect(loadConfig({ TOLLGATE_MAX_RECOVERIES: '0' }).runtime.maxRecoveries).toBe(0);
    expect(() => loadConfig({ TOLLGATE_MAX_RECOVERIES: '-1' })).toThrow(/TOLLGATE_MAX_RECOVERIES: got "-1"/);
  });

  it('dead-letters a run interrupted more often than the limit allows: with its event, never advanced or swept again, explained by runs show', async () => {
    const runtime = makeRuntime();
    const id = await deadLetteredRun(runtime);
    // Each interruption re-ran only the poison step; the step before it ran once.
    expect(executed).toEqual(['before', 'boom#1', 'boom#2', 'boom#3']);

    const detail = await runtime.getRun(id);
    expect(detail.run).toMatchObject({ status: 'dead_letter', recovery_attempts: MAX_RECOVERIES, finished_at: null });
    expect(detail.run.error).toMatchObject({ code: 'TG_RUN_DEAD_LETTER', details: { recoveries: MAX_RECOVERIES, limit: MAX_RECOVERIES, steps: '"boom"' } });
    expect((detail.run.error as { message: string }).message).toBe(
      `Run ${id} was dead-lettered after ${MAX_RECOVERIES} recoveries: its advance was interrupted again in step "boom" (the worker died, or lost the run, each time it resumed it). ` +
        `It is not advanced or swept again until a person acts: find the cause, then resume it with \`tollgate runs retry ${id}\`, or give up with \`tollgate runs cancel ${id}\`.`,
    );
    const types = detail.events.map((e) => e.type);
    expect(types.filter((t) => t === 'run.recovered')).toHaveLength(MAX_RECOVERIES);
    expect(types.at(-1)).toBe('run.dead_lettered');
    expect(detail.events.at(-1)?.payload).toMatchObject({
      recoveries: MAX_RECOVERIES,
      limit: MAX_RECOVERIES,
      interruptedStatus: 'running',
      lastExecutor: `worker-${MAX_RECOVERIES}`,
      steps: '"boom"',
    });

    // Not advanced again: a later job (a duplicate, a reaped one) ends without touching it.
    expect(await runtime.advance(id, 'worker-again')).toBe('dead-lettered');
    expect(executed).toHaveLength(4);
    const after = await runtime.getRun(id);
    expect(after.events).toHaveLength(detail.events.length);
    expect(after.run.status).toBe('dead_letter');

    // Not swept: even untouched for long and with no advance job left, it waits for a person.
    await env.db.pool.query(`DELETE FROM graphile_worker._private_jobs WHERE payload->>'runId' = $1`, [id]);
    await env.db.pool.query(`UPDATE tollgate.runs SET updated_at = now() - interval '1 hour' WHERE id = $1`, [id]);
    expect(await sweepStuckRuns(env.db.pool)).not.toContain(id);

    const shown = await cli('runs', 'show', id);
    expect(shown).toMatchObject({ code: 0, err: '' });
    expect(shown.out).toContain(`${id}  poison@v1  DEAD_LETTER`);
    expect(shown.out).toContain(
      `dead-lettered after ${MAX_RECOVERIES} recoveries (limit ${MAX_RECOVERIES}, set by TOLLGATE_MAX_RECOVERIES): its advance was interrupted again in step "boom"`,
    );
    expect(shown.out).toContain(`take it out with \`tollgate runs retry ${id}\``);

    // The chat views offer Retry (and Cancel) for it: stuck, not ended.
    expect(buildRunView(detail.run, detail.steps).actions).toEqual([ACTION_IDS.retry, ACTION_IDS.cancel]);
  });

  it('takes a dead-lettered run out with `runs retry`: recoveries counted afresh, resumed where it stopped, and it finishes', async () => {
    const runtime = makeRuntime();
    const id = await deadLetteredRun(runtime);

    poisoned = false; // the cause is found and fixed
    const res = await cli('runs', 'retry', id);
    expect(res).toMatchObject({ code: 0, err: '' });
    expect(res.out).toContain(`${id} taken out of dead letter and queued again`);

    const queued = await runtime.getRun(id);
    expect(queued.run).toMatchObject({ status: 'queued', recovery_attempts: 0, error: null });
    expect(queued.events.at(-1)).toMatchObject({ type: 'run.retried', payload: { fromDeadLetter: true, recoveries: MAX_RECOVERIES } });
    const { rows } = await env.db.pool.query(`SELECT 1 FROM graphile_worker._private_jobs WHERE payload->>'runId' = $1`, [id]);
    expect(rows.length).toBeGreaterThan(0); // its advance job is enqueued with it

    expect(await runtime.advance(id, 'worker-fixed')).toBe('finished');
    const done = await runtime.getRun(id);
    expect(done.run).toMatchObject({ status: 'succeeded', output: { boom: 'survived' }, recovery_attempts: 0 });
    // Resumed at the interrupted step: "before" is not run again, "boom" gets its next attempt.
    expect(executed).toEqual(['before', 'boom#1', 'boom#2', 'boom#3', 'boom#4']);
    expect(done.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['before', 'succeeded', 1],
      ['boom', 'succeeded', 4],
    ]);
  });

  it('takes a dead-lettered run out with cancel too, without running the poison step again', async () => {
    const runtime = makeRuntime();
    const id = await deadLetteredRun(runtime);
    await runtime.cancel(id, null);
    expect((await runtime.getRun(id)).run).toMatchObject({ status: 'queued', recovery_attempts: 0 });
    expect(await runtime.advance(id, 'worker-cancel')).toBe('finished');
    expect((await runtime.getRun(id)).run.status).toBe('cancelled');
    expect(executed).toEqual(['before', 'boom#1', 'boom#2', 'boom#3']);
  });
});
