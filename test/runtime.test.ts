import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { NonRetriableError } from '../src/common/errors.ts';
import { useTestRuntimes, waitForRun } from './helpers/runtime.ts';

const files = useTestRuntimes();
const rt = (workflows: WorkflowDefinition[], opts: Parameters<typeof files.start>[1] = {}) => files.start(workflows, opts);

const wf = (name: string, run: WorkflowDefinition['run'], version = 1, input: z.ZodType = z.object({}).passthrough()) =>
  defineWorkflow({ name, version, description: name, input, run });

async function events(runId: string) {
  const { rows } = await files.db.pool.query<{ type: string; step_idx: number | null; payload: Record<string, unknown> }>(
    'SELECT type, step_idx, payload FROM tollgate.events WHERE run_id = $1 ORDER BY id',
    [runId],
  );
  return rows;
}

describe('durable execution', () => {
  it('replays completed steps from the journal instead of running them again', async () => {
    const calls = { a: 0, b: 0 };
    const w = wf('memo', async (ctx) => {
      const a = await ctx.step('a', () => {
        calls.a++;
        return { n: 41 };
      });
      await ctx.sleep('nap', 300); // longer than inlineWaitMaxMs: the run suspends and is replayed
      const b = await ctx.step('b', () => {
        calls.b++;
        return a.n + 1;
      });
      return { b };
    });
    const { runtime } = await rt([w], { inlineWaitMaxMs: 0 });
    const run = await runtime.startRun({ workflow: 'memo', input: {} });
    const done = await waitForRun(runtime, run.id, 'succeeded');
    expect(done.output).toEqual({ b: 42 });
    expect(calls).toEqual({ a: 1, b: 1 });
    const types = (await events(run.id)).map((e) => e.type);
    expect(types).toContain('run.waiting');
    expect(types).toContain('run.resumed');
  });

  it('retries a failing step with backoff until it succeeds', async () => {
    const times: number[] = [];
    const w = wf('flaky', async (ctx) =>
      ctx.step(
        'flaky',
        ({ attempt }) => {
          times.push(Date.now());
          if (attempt < 3) throw new Error(`boom ${attempt}`);
          return 'ok';
        },
        { retry: { maxAttempts: 5, initialDelayMs: 100, factor: 2, jitter: 0 } },
      ),
    );
    const { runtime } = await rt([w]);
    const run = await runtime.startRun({ workflow: 'flaky', input: {} });
    const done = await waitForRun(runtime, run.id, 'succeeded');
    expect(done.output).toBe('ok');
    expect(times).toHaveLength(3);
    // backoff grows: >= 100 ms then >= 200 ms between attempts
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(95);
    expect((times[2] as number) - (times[1] as number)).toBeGreaterThanOrEqual(195);
    const detail = await runtime.getRun(run.id);
    expect(detail.steps[0]).toMatchObject({ name: 'flaky', status: 'succeeded', attempts: 3 });
    expect(detail.events.filter((e) => e.type === 'step.retrying')).toHaveLength(2);
  });

  it('fails an attempt that exceeds its timeout, and fails the run when attempts run out', async () => {
    let aborted = 0;
    const w = wf('slow', async (ctx) =>
      ctx.step(
        'slow',
        ({ signal }) =>
          new Promise((resolve) => {
            const t = setTimeout(resolve, 5000);
            signal.addEventListener('abort', () => {
              aborted++;
              clearTimeout(t);
            });
          }),
        { timeoutMs: 100, retry: { maxAttempts: 2, initialDelayMs: 10 } },
      ),
    );
    const { runtime } = await rt([w]);
    const run = await runtime.startRun({ workflow: 'slow', input: {} });
    const done = await waitForRun(runtime, run.id, 'failed');
    expect(done.error).toMatchObject({ code: 'TG_STEP_FAILED' });
    expect((done.error as { message: string }).message).toMatch(/Step "slow" failed after 2 attempt\(s\): Step "slow" timed out after 100 ms/);
    expect(aborted).toBe(2);
    const detail = await runtime.getRun(run.id);
    expect(detail.steps[0]).toMatchObject({ status: 'failed', attempts: 2 });
  });

  it('fails the run at once on a non-retriable error, naming the step, and keeps earlier results', async () => {
    let second = 0;
    const w = wf('perm', async (ctx) => {
      await ctx.step('first', () => 1);
      await ctx.step('second', () => {
        second++;
        throw new NonRetriableError('card declined');
      });
      await ctx.step('never', () => 3);
    });
    const { runtime } = await rt([w]);
    const run = await runtime.startRun({ workflow: 'perm', input: {} });
    const done = await waitForRun(runtime, run.id, 'failed');
    expect(second).toBe(1);
    expect((done.error as { message: string }).message).toContain('Step "second" failed after 1 attempt(s): card declined');
    const detail = await runtime.getRun(run.id);
    expect(detail.steps.map((s) => [s.name, s.status])).toEqual([
      ['first', 'succeeded'],
      ['second', 'failed'],
    ]);
  });

  it('cancels a waiting run, and refuses to cancel a finished one', async () => {
    const w = wf('sleepy', async (ctx) => {
      await ctx.step('before', () => 1);
      await ctx.sleep('long', '1h');
      await ctx.step('after', () => 2);
    });
    const { runtime } = await rt([w]);
    const run = await runtime.startRun({ workflow: 'sleepy', input: {}, requester: { platform: 'cli', tenant: 'test', user: 'ops' } });
    const waiting = await waitForRun(runtime, run.id, 'waiting');
    expect(waiting.wait_reason).toBe('sleep');
    await runtime.cancel(run.id, { platform: 'cli', tenant: 'test', user: 'ops' });
    await waitForRun(runtime, run.id, 'cancelled');
    const detail = await runtime.getRun(run.id);
    expect(detail.steps.map((s) => s.name)).toEqual(['before', 'long']);
    expect(detail.events.find((e) => e.type === 'run.cancel_requested')?.actor).toMatchObject({ user: 'ops' });
    await expect(runtime.cancel(run.id, null)).rejects.toMatchObject({ code: 'TG_RUN_STATE' });
  });

  it('detects a replay whose steps no longer match the journal, naming the step', async () => {
    let variant = 'old';
    const w = wf('drift', async (ctx) => {
      await ctx.step(variant === 'old' ? 'charge' : 'refund', () => 1);
      await ctx.sleep('gap', 200);
      await ctx.step('done', () => 2);
    });
    const { runtime } = await rt([w], { inlineWaitMaxMs: 0 });
    const run = await runtime.startRun({ workflow: 'drift', input: {} });
    await waitForRun(runtime, run.id, 'waiting');
    variant = 'new'; // the code changed under a running run
    const failed = await waitForRun(runtime, run.id, 'failed');
    expect(failed.error).toMatchObject({ code: 'TG_NONDETERMINISM' });
    expect((failed.error as { message: string }).message).toContain('step #0 is "refund" on replay but the journal recorded "charge"');
  });

  it('keeps a run on the version it started on after a newer version is registered', async () => {
    const v1 = wf(
      'pinned',
      async (ctx) => {
        await ctx.sleep('wait', 200);
        return ctx.step('which', () => 'v1');
      },
      1,
    );
    const v2 = wf('pinned', async (ctx) => ctx.step('which', () => 'v2'), 2);
    const t = await rt([v1], { inlineWaitMaxMs: 0 });
    const run = await t.runtime.startRun({ workflow: 'pinned', input: {} });
    await waitForRun(t.runtime, run.id, 'waiting');
    t.registry.register(v2);
    const done = await waitForRun(t.runtime, run.id, 'succeeded');
    expect(done.workflow_version).toBe(1);
    expect(done.output).toBe('v1');
    const fresh = await t.runtime.startRun({ workflow: 'pinned', input: {} });
    expect(fresh.workflow_version).toBe(2);
    expect((await waitForRun(t.runtime, fresh.id, 'succeeded')).output).toBe('v2');
  });

  it('refuses input that does not match the schema, naming the field', async () => {
    const w = defineWorkflow({
      name: 'typed',
      version: 1,
      description: 'typed',
      input: z.object({ amount: z.coerce.number().positive() }),
      run: async () => null,
    }) as unknown as WorkflowDefinition;
    const { runtime } = await rt([w], { worker: false });
    await expect(runtime.startRun({ workflow: 'typed', input: { amount: '-3' } })).rejects.toMatchObject({
      code: 'TG_INPUT_INVALID',
      message: expect.stringContaining('amount:'),
    });
    await expect(runtime.startRun({ workflow: 'nope', input: {} })).rejects.toMatchObject({ code: 'TG_WORKFLOW_UNKNOWN' });
  });

  it('gives ctx.now() and ctx.randomUUID() the same values on every replay', async () => {
    const seen: string[] = [];
    const w = wf('clock', async (ctx) => {
      const id = ctx.randomUUID();
      const at = ctx.now().toISOString();
      seen.push(`${id}@${at}`);
      await ctx.sleep('gap', 200);
      return { id, at };
    });
    const { runtime } = await rt([w], { inlineWaitMaxMs: 0 });
    const run = await runtime.startRun({ workflow: 'clock', input: {} });
    const done = await waitForRun(runtime, run.id, 'succeeded');
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(new Set(seen).size).toBe(1);
    expect(done.output).toMatchObject({ id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  });
});

describe('journal edge cases', () => {
  it('records every step of a Promise.all that finish together, and runs none of them again on replay', async () => {
    const calls = { a: 0, b: 0 };
    const both = wf('together', async (ctx) => {
      // Both bodies wait for each other, so both finish in the same turn of the event loop.
      let arrived = 0;
      let release = () => {};
      const gate = new Promise<void>((r) => (release = r));
      const body = async (name: 'a' | 'b') => {
        calls[name]++;
        if (++arrived === 2) release();
        await gate;
        return name.toUpperCase();
      };
      const [a, b] = await Promise.all([ctx.step('a', () => body('a')), ctx.step('b', () => body('b'))]);
      await ctx.sleep('nap', 300); // suspends: the replay must find both successes in the journal
      return `${a}${b}`;
    });
    const { runtime } = await rt([both], { inlineWaitMaxMs: 0 });
    const run = await runtime.startRun({ workflow: 'together', input: {} });
    const done = await waitForRun(runtime, run.id, 'succeeded');
    expect(done.output).toBe('AB');
    expect(calls).toEqual({ a: 1, b: 1 });
    const types = (await events(run.id)).filter((e) => e.type === 'step.succeeded').map((e) => e.payload.step);
    expect(types).toEqual(expect.arrayContaining(['a', 'b']));
  });

  it('fails a step whose output PostgreSQL cannot store (a NUL character), saying why, instead of retrying forever', async () => {
    const nul = wf('nul', async (ctx) => ctx.step('binary', () => 'a\u0000b'));
    const { runtime } = await rt([nul]);
    const run = await runtime.startRun({ workflow: 'nul', input: {} });
    const failed = await waitForRun(runtime, run.id, 'failed');
    expect((failed.error as { message: string }).message).toContain('contains a NUL character');
  });
});

describe('invariant 1: every state change of a run appends its event in the same transaction', () => {
  it('records an event for each run and step transition', async () => {
    const w = wf('evented', async (ctx) => {
      await ctx.step('one', () => 1);
      await ctx.step('two', () => 2);
    });
    const { runtime } = await rt([w]);
    const run = await runtime.startRun({ workflow: 'evented', input: {} });
    await waitForRun(runtime, run.id, 'succeeded');
    expect((await events(run.id)).map((e) => `${e.type}${e.step_idx === null ? '' : `#${e.step_idx}`}`)).toEqual([
      'run.created',
      'run.started',
      'step.started#0',
      'step.succeeded#0',
      'step.started#1',
      'step.succeeded#1',
      'run.succeeded',
    ]);
  });

  it('leaves the state unchanged when its event cannot be written', async () => {
    const w = wf('atomic', async (ctx) => ctx.step('only', () => 'x'));
    const { runtime } = await rt([w], { worker: false });
    const run = await runtime.startRun({ workflow: 'atomic', input: {} });
    await files.db.pool.query(`
      CREATE FUNCTION pg_temp_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.type = 'run.succeeded' THEN RAISE EXCEPTION 'event store unavailable'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER refuse_success BEFORE INSERT ON tollgate.events FOR EACH ROW EXECUTE FUNCTION pg_temp_refuse();`);
    try {
      await expect(runtime.advance(run.id, 'test')).rejects.toThrow(/event store unavailable/);
      const detail = await runtime.getRun(run.id);
      expect(detail.run.status).toBe('running'); // not 'succeeded' without its event
      expect(detail.events.map((e) => e.type)).not.toContain('run.succeeded');
    } finally {
      await files.db.pool.query('DROP TRIGGER refuse_success ON tollgate.events; DROP FUNCTION pg_temp_refuse();');
    }
    expect(await runtime.advance(run.id, 'test')).toBe('finished');
    const detail = await runtime.getRun(run.id);
    expect(detail.run.status).toBe('succeeded');
    expect(detail.events.map((e) => e.type)).toContain('run.succeeded');
    expect(detail.steps[0]?.attempts).toBe(1); // the completed step was not run again
  });
});

describe('invariant 2: one executor per run', () => {
  it('a second advance while one is mid-step is busy (or waits), claims nothing, and every step runs once', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inStep = new Promise<void>((r) => (entered = r));
    const calls = { a: 0, b: 0 };
    const w = wf('one-executor', async (ctx) => {
      await ctx.step('a', async () => {
        calls.a++;
        entered();
        await held;
      });
      await ctx.step('b', () => calls.b++);
      return 'done';
    });
    const { runtime } = await rt([w], { worker: false, lockWaitMs: 10_000 });
    const run = await runtime.startRun({ workflow: 'one-executor', input: {} });
    const first = runtime.advance(run.id, 'executor-1');
    await inStep;
    // The lock is tried in the claim's own statement: a busy run is neither claimed nor given an event.
    expect(await runtime.advance(run.id, 'executor-2', undefined, { waitForLock: false })).toBe('busy');
    const waiting = runtime.advance(run.id, 'executor-3');
    release();
    expect(await first).toBe('finished');
    expect(await waiting).toBe('already-finished');
    expect(calls).toEqual({ a: 1, b: 1 });
    const types = (await events(run.id)).map((e) => e.type);
    expect(types.filter((t) => t === 'run.started' || t === 'run.recovered' || t === 'run.resumed')).toEqual(['run.started']);
    const { rows } = await files.db.pool.query<{ executor: string }>('SELECT executor FROM tollgate.runs WHERE id = $1', [run.id]);
    expect(rows[0]?.executor).toBe('executor-1');
  });
});
