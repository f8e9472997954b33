/**
 * Edit and retry's rule for steps the journal records no input for (a plain `ctx.step`), and the
 * undo an edit runs, on the runtime alone (docs/operator-control.md): such a step is taken as
 * changed when any input key changed, so it is undone (its compensation) and run again; an edit
 * that changes nothing keeps every completed step.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { NonRetriableError } from '../src/common/errors.ts';
import { parsePrincipal } from '../src/common/principals.ts';
import { defineWorkflow } from '../src/runtime/workflow.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';

const REQ = parsePrincipal('slack:T1:UREQ');
const counts: Record<string, number> = {};
const count = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
/** The idempotency keys the reserve step's undo was given, by run. */
const undoKeys: Record<string, string[]> = {};

const mail = defineWorkflow({
  name: 'mail',
  version: 1,
  description: 'Reserve a slot, then send to an address',
  input: z.object({ to: z.string(), note: z.string().optional() }),
  run: async (ctx) => {
    const slot = await ctx.step('reserve', () => count(`${ctx.runId}:reserve`), {
      compensate: ({ idempotencyKey }) => {
        count(`${ctx.runId}:release`);
        (undoKeys[ctx.runId] ??= []).push(idempotencyKey);
      },
    });
    return ctx.step(
      'send',
      () => {
        count(`${ctx.runId}:send`);
        if (!ctx.input.to.includes('@')) throw new NonRetriableError(`"${ctx.input.to}" is not an address`);
        return { slot, to: ctx.input.to };
      },
      { resolvable: { giveUp: true, skip: true } },
    );
  },
});

let db: TestDb;
let t: TestRuntime;

beforeAll(async () => {
  db = await createTestDb();
  t = await createTestRuntime(db, [mail]);
});
afterAll(async () => {
  await t?.stop();
  await db?.close();
});

describe('Edit and retry on a plain step without a recorded input', () => {
  it('an edit of any input key undoes and re-runs the earlier plain step, saying so first', async () => {
    const run = await t.runtime.startRun({ workflow: 'mail', input: { to: 'nobody' }, requester: REQ });
    await waitForRun(t.runtime, run.id, 'failed');
    expect(counts[`${run.id}:release`]).toBeUndefined(); // the step allows Give up: its failure held the undo

    const plan = await t.runtime.planEdit(run.id, REQ, { to: 'ada@example.com' });
    expect(plan).toMatchObject({ rerun: ['reserve'], undo: ['reserve'], resumeAt: 'send', changed: { to: { from: 'nobody', to: 'ada@example.com' } } });
    expect(plan.summary).toBe('Changes "to". Step "reserve" will run again; "reserve" will be undone first. The run then resumes at "send".');

    await t.runtime.retryWithEdits(run.id, REQ, { to: 'ada@example.com' });
    const done = await waitForRun(t.runtime, run.id, 'succeeded');
    expect(done.output).toEqual({ slot: 2, to: 'ada@example.com' }); // the reserve step ran again (its second execution)
    expect(counts[`${run.id}:reserve`]).toBe(2);
    expect(counts[`${run.id}:release`]).toBe(1);
    const rewound = await db.pool.query('SELECT payload FROM tollgate.events WHERE run_id = $1 AND type = $2', [run.id, 'run.rewound']);
    expect(rewound.rows[0]?.payload).toMatchObject({ undone: ['reserve'] });
  });

  it('an edit that changes nothing keeps every completed step', async () => {
    const run = await t.runtime.startRun({ workflow: 'mail', input: { to: 'nobody' }, requester: REQ });
    await waitForRun(t.runtime, run.id, 'failed');
    const plan = await t.runtime.planEdit(run.id, REQ, { to: 'nobody' });
    expect(plan).toMatchObject({ rerun: [], undo: [], changed: {} });
    expect(plan.summary).toContain('Every completed step is kept');
  });

  it('the requester may not resolve by hand; Give up, offered by the step, is for operators', async () => {
    const run = await t.runtime.startRun({ workflow: 'mail', input: { to: 'nobody' }, requester: REQ });
    await waitForRun(t.runtime, run.id, 'failed');
    await expect(t.runtime.resolve(run.id, REQ, { action: 'give-up', reason: 'x' })).rejects.toMatchObject({ code: 'TG_NOT_ALLOWED' });
    await expect(t.runtime.resolve(run.id, null, { action: 'by-hand', output: {}, reason: 'x' })).rejects.toThrow(
      'Step "send" of run ' + run.id + ' does not allow "Resolve by hand"; its workflow allows Skip and compensate, Give up (and Retry).',
    );
    await expect(t.runtime.resolve(run.id, null, { action: 'give-up', reason: '  ' })).rejects.toThrow('Give up needs a reason');
  });

  it('each undo of a step re-run after an edit gets its own idempotency key', async () => {
    const run = await t.runtime.startRun({ workflow: 'mail', input: { to: 'nobody' }, requester: REQ });
    await waitForRun(t.runtime, run.id, 'failed');
    await t.runtime.retryWithEdits(run.id, REQ, { to: 'still nobody' }); // undoes reserve (its first effect), runs it again, fails again
    await waitForRun(t.runtime, run.id, 'failed');
    await t.runtime.resolve(run.id, null, { action: 'skip', reason: 'no address to be had' }); // undoes the second effect
    await waitForRun(t.runtime, run.id, 'compensated');
    expect(undoKeys[run.id]).toEqual([`${run.id}:0:undo`, `${run.id}:0:g1:undo`]);
  });
});
