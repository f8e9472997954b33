/**
 * Compensation, cancellation during a step, retry from the failed step, and idempotency keys.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { NonRetriableError } from '../src/common/errors.ts';
import { defineWorkflow, type WorkflowDefinition, type WorkflowContext } from '../src/runtime/workflow.ts';
import { useTestRuntimes, waitForRun } from './helpers/runtime.ts';
import { poll } from './helpers/poll.ts';

const files = useTestRuntimes();
const rt = (workflows: WorkflowDefinition[]) => files.start(workflows);

const wf = (name: string, run: (ctx: WorkflowContext<{ failAt?: string }>) => Promise<unknown>) =>
  defineWorkflow({ name, version: 1, description: name, input: z.object({ failAt: z.string().optional() }), run }) as unknown as WorkflowDefinition;

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function eventTypes(runId: string): Promise<string[]> {
  const { rows } = await files.db.pool.query<{ type: string; step_idx: number | null }>(
    'SELECT type, step_idx FROM tollgate.events WHERE run_id = $1 ORDER BY id',
    [runId],
  );
  return rows.map((e) => `${e.type}${e.step_idx === null ? '' : `#${e.step_idx}`}`);
}

describe('compensation', () => {
  it('undoes the completed steps in reverse order when a run fails for good, and says so in steps and events', async () => {
    const log: string[] = [];
    const w = wf('undo-order', async (ctx) => {
      await ctx.step('reserve', () => log.push('do reserve'), { compensate: () => log.push('undo reserve') });
      await ctx.step('note', () => log.push('do note')); // no compensation: nothing to undo
      await ctx.step('charge', () => ({ charge: 'ch_1' }), {
        compensate: ({ output, idempotencyKey }) => log.push(`undo charge ${(output as { charge: string }).charge} ${idempotencyKey}`),
      });
      await ctx.step(
        'ship',
        () => {
          throw new NonRetriableError('warehouse closed');
        },
        { compensate: () => log.push('undo ship (must not run: ship never completed)') },
      );
    });
    const { runtime } = await rt([w]);
    const run = await runtime.startRun({ workflow: 'undo-order', input: {} });
    const done = await waitForRun(runtime, run.id, 'compensated');

    expect(log).toEqual(['do reserve', 'do note', `undo charge ch_1 ${run.id}:2:undo`, 'undo reserve']);
    expect((done.error as { message: string }).message).toContain('warehouse closed'); // why it was undone
    const detail = await runtime.getRun(run.id);
    expect(detail.steps.map((s) => [s.name, s.status])).toEqual([
      ['reserve', 'compensated'],
      ['note', 'succeeded'],
      ['charge', 'compensated'],
      ['ship', 'failed'],
    ]);
    expect(await eventTypes(run.id)).toEqual([
      'run.created',
      'run.started',
      'step.started#0',
      'step.succeeded#0',
      'step.started#1',
      'step.succeeded#1',
      'step.started#2',
      'step.succeeded#2',
      'step.started#3',
      'step.failed#3',
      'run.compensating',
      'step.compensating#2',
      'step.compensated#2',
      'step.compensating#0',
      'step.compensated#0',
      'run.compensated',
    ]);
    // Its effects were undone, so it cannot be resumed: a new run is the way forward.
    await expect(runtime.retry(run.id, null)).rejects.toMatchObject({ code: 'TG_RUN_STATE', message: expect.stringContaining('start a new run') });
  });

  it('retries a failing compensation, and ends in compensation_failed saying a person must finish the undo when it keeps failing', async () => {
    const undo: string[] = [];
    const w = wf('undo-fails', async (ctx) => {
      await ctx.step('book hotel', () => 'h1', { compensate: () => undo.push('cancel hotel') });
      await ctx.step('book flight', () => 'f1', {
        compensate: ({ attempt }) => {
          undo.push(`cancel flight #${attempt}`);
          throw new Error('airline API down');
        },
        compensateRetry: { maxAttempts: 3, initialDelayMs: 10, jitter: 0 },
      });
      await ctx.step('pay', () => {
        throw new NonRetriableError('card declined');
      });
    });
    const { runtime } = await rt([w]);
    const run = await runtime.startRun({ workflow: 'undo-fails', input: {} });
    const done = await waitForRun(runtime, run.id, 'compensation_failed');

    // Three attempts at the flight, then it stops: the hotel is not cancelled behind a person's back
    // while the flight is still booked; the person sees both.
    expect(undo).toEqual(['cancel flight #1', 'cancel flight #2', 'cancel flight #3']);
    const error = done.error as { code: string; message: string; cause?: { message: string } };
    expect(error.code).toBe('TG_STEP_FAILED');
    expect(error.message).toMatch(/Compensation of step "book flight" failed after 3 attempt\(s\).*A person must finish the undo by hand/);
    expect(error.cause?.message).toContain('card declined');
    const detail = await runtime.getRun(run.id);
    expect(detail.steps.map((s) => [s.name, s.status])).toEqual([
      ['book hotel', 'succeeded'],
      ['book flight', 'compensation_failed'],
      ['pay', 'failed'],
    ]);
    expect((detail.steps[1]?.error as { message: string }).message).toBe('airline API down');
    const types = await eventTypes(run.id);
    expect(types.filter((t) => t.startsWith('step.compensation_failed'))).toHaveLength(3);
    expect(types.at(-1)).toBe('run.compensation_failed');
  });

  it('cancelled during a step: lets the step finish, runs no further step, and undoes the completed ones in reverse order', async () => {
    const log: string[] = [];
    const inFlight = deferred();
    const release = deferred();
    const w = wf('cancel-mid-step', async (ctx) => {
      await ctx.step('a', () => log.push('do a'), { compensate: () => log.push('undo a') });
      await ctx.step(
        'b',
        async () => {
          log.push('start b');
          inFlight.resolve();
          await release.promise;
          log.push('end b');
        },
        { compensate: () => log.push('undo b') },
      );
      await ctx.step('c', () => log.push('do c (must not run)'), { compensate: () => log.push('undo c') });
    });
    const { runtime } = await rt([w]);
    const run = await runtime.startRun({ workflow: 'cancel-mid-step', input: {}, requester: { platform: 'cli', tenant: 'test', user: 'ops' } });
    await inFlight.promise;
    await runtime.cancel(run.id, { platform: 'cli', tenant: 'test', user: 'ops' });
    release.resolve();
    await waitForRun(runtime, run.id, 'cancelled');

    expect(log).toEqual(['do a', 'start b', 'end b', 'undo b', 'undo a']);
    const detail = await runtime.getRun(run.id);
    // No row for "c": the journal does not claim a step started that never did.
    expect(detail.steps.map((s) => [s.name, s.status])).toEqual([
      ['a', 'compensated'],
      ['b', 'compensated'],
    ]);
    const types = await eventTypes(run.id);
    expect(types).toContain('run.cancel_requested');
    expect(types.slice(-6)).toEqual([
      'run.compensating',
      'step.compensating#1',
      'step.compensated#1',
      'step.compensating#0',
      'step.compensated#0',
      'run.cancelled',
    ]);
  });
});

describe('retry from the failed step', () => {
  it('resumes a failed run at the step that failed; earlier steps are not executed again', async () => {
    const count = { first: 0, second: 0, flaky: 0, last: 0 };
    const keys: string[] = [];
    let broken = true;
    const w = wf('resume', async (ctx) => {
      await ctx.step('first', () => ++count.first);
      await ctx.step('second', () => ++count.second);
      await ctx.step(
        'flaky',
        ({ idempotencyKey }) => {
          count.flaky++;
          keys.push(idempotencyKey);
          if (broken) throw new Error('upstream 503');
          return 'ok';
        },
        { retry: { maxAttempts: 2, initialDelayMs: 10 } },
      );
      return ctx.step('last', () => ++count.last);
    });
    const { runtime } = await rt([w]);
    const run = await runtime.startRun({ workflow: 'resume', input: {}, requester: { platform: 'cli', tenant: 'test', user: 'ops' } });
    await waitForRun(runtime, run.id, 'failed');
    expect(count).toEqual({ first: 1, second: 1, flaky: 2, last: 0 });

    broken = false; // the outage is over
    await runtime.retry(run.id, { platform: 'cli', tenant: 'test', user: 'ops' });
    const done = await waitForRun(runtime, run.id, 'succeeded');
    expect(count).toEqual({ first: 1, second: 1, flaky: 3, last: 1 });
    expect(done.output).toBe(1);
    expect(new Set(keys)).toEqual(new Set([`${run.id}:2`])); // the same key across attempts and the retry
    const detail = await runtime.getRun(run.id);
    expect(detail.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['first', 'succeeded', 1],
      ['second', 'succeeded', 1],
      ['flaky', 'succeeded', 1],
      ['last', 'succeeded', 1],
    ]);
    expect(detail.events.find((e) => e.type === 'run.retried')).toMatchObject({ actor: { user: 'ops' }, payload: { fromSteps: ['flaky'] } });
  });

  it('refuses to retry a run that has not failed, saying why', async () => {
    const w = wf('fine', async (ctx) => ctx.step('only', () => 1));
    const { runtime } = await rt([w]);
    const run = await runtime.startRun({ workflow: 'fine', input: {} });
    await waitForRun(runtime, run.id, 'succeeded');
    await expect(runtime.retry(run.id, null)).rejects.toMatchObject({
      code: 'TG_RUN_STATE',
      message: `Run ${run.id} is succeeded; only failed runs can be retried.`,
    });
  });
});

describe('idempotency keys', () => {
  it('gives each step of each run its own key, the same on every attempt of that step', async () => {
    const seen: { run: string; step: string; attempt: number; key: string }[] = [];
    const w = wf('keys', async (ctx) => {
      await ctx.step(
        'charge',
        ({ runId, step, attempt, idempotencyKey }) => {
          seen.push({ run: runId, step, attempt, key: idempotencyKey });
          if (attempt < 3) throw new Error('timeout talking to the bank');
        },
        { retry: { maxAttempts: 3, initialDelayMs: 5 } },
      );
      await ctx.step('email', ({ runId, step, attempt, idempotencyKey }) => {
        seen.push({ run: runId, step, attempt, key: idempotencyKey });
      });
    });
    const { runtime } = await rt([w]);
    const runs = [await runtime.startRun({ workflow: 'keys', input: {} }), await runtime.startRun({ workflow: 'keys', input: {} })];
    for (const r of runs) await waitForRun(runtime, r.id, 'succeeded');
    for (const r of runs) {
      const charge = seen.filter((s) => s.run === r.id && s.step === 'charge');
      expect(charge.map((s) => s.attempt)).toEqual([1, 2, 3]);
      expect(new Set(charge.map((s) => s.key)).size).toBe(1);
    }
    const distinct = new Set(seen.map((s) => `${s.run}/${s.step}`));
    expect(new Set(seen.map((s) => s.key)).size).toBe(distinct.size); // 2 runs × 2 steps = 4 keys
    expect(distinct.size).toBe(4);
  });
});

describe('journal writes on the hot path', () => {
  it('records a step as succeeded before the workflow moves on, even when it does something else before its next step', async () => {
    const between = deferred();
    const checked = deferred();
    const w = wf('slow-between', async (ctx) => {
      await ctx.step('a', () => 'A');
      // Not a step (discouraged, but possible): the journal must not wait for the next step.
      between.resolve();
      await checked.promise;
      return ctx.step('b', () => 'B');
    });
    const { runtime } = await rt([w]);
    const run = await runtime.startRun({ workflow: 'slow-between', input: {} });
    await between.promise;
    const status = await poll(
      async () => {
        const now = (await runtime.getRun(run.id)).steps[0]?.status;
        return now === 'succeeded' && now;
      },
      { message: "step 'a' to be recorded before the next step starts", timeoutMs: 2000, intervalMs: 10, retryErrors: false },
    );
    expect(status).toBe('succeeded');
    checked.resolve();
    const done = await waitForRun(runtime, run.id, 'succeeded');
    expect(done.output).toBe('B');
    expect(await eventTypes(run.id)).toEqual([
      'run.created',
      'run.started',
      'step.started#0',
      'step.succeeded#0',
      'step.started#1',
      'step.succeeded#1',
      'run.succeeded',
    ]);
  });
});
