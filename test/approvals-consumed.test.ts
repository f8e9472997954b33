/**
 * Approvals are consumed by use (issue 21, item 6): an approval covers exactly one execution of the
 * write tool call it is bound to. A second call with the same parameters in the same run is refused
 * with TG_TOOL_NOT_APPROVED unless the gate said `reusable`; a step that already used the approval
 * and runs again (a retry in a later advance, a replay after a crash) is the same execution and
 * passes, because the use is recorded on the approval.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { parseProjectConfig, type ProjectConfig } from '../src/config/project-config.ts';
import { parsePrincipal } from '../src/common/principals.ts';
import { listRunApprovals } from '../src/approvals/index.ts';
import { builtinToolRegistry, defineTool } from '../src/tools/index.ts';
import { prepareToolCall, requireApproval } from '../src/tools/invoke.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';
import { poll } from './helpers/poll.ts';

const ALICE = 'slack:T1:UALICE';
const REQUESTER = 'slack:T1:UREQ';
const PO = 'purchase-orders.create';
const order = { vendor: 'Acme', amount: 100, currency: 'EUR', reason: 'chairs' };

let db: TestDb;
let project: ProjectConfig;
const runtimes: TestRuntime[] = [];

beforeAll(async () => {
  db = await createTestDb();
  project = parseProjectConfig({ groups: { finance: [ALICE] } });
});
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.stop()));
});
afterAll(async () => {
  await db.close();
});

/** One approval for the order, then the same write twice. */
const twice = defineWorkflow({
  name: 'twice',
  version: 1,
  description: 'approve one order, write it twice',
  input: z.object({ reusable: z.boolean() }),
  tools: [PO],
  run: async (ctx) => {
    const g = await ctx.approval('ok', { policy: { groups: ['finance'] }, summary: 'order', params: order, tool: PO, reusable: ctx.input.reusable });
    if (!g.approved) return 'rejected';
    const first = await ctx.tool<{ orderId: string }>(PO, order);
    const second = await ctx.tool<{ orderId: string }>(PO, order);
    return [first.orderId, second.orderId];
  },
}) as unknown as WorkflowDefinition;

async function orders(runId: string) {
  return (await db.pool.query('SELECT id FROM tollgate.purchase_orders WHERE run_id = $1', [runId])).rows;
}

async function approveOnly(runtime: TestRuntime['runtime'], runId: string) {
  const pending = await poll(async () => (await listRunApprovals(runtime.pool, runId)).find((a) => a.status === 'pending'), {
    message: 'the pending approval',
    retryErrors: false,
  });
  await runtime.decide(pending.id, ALICE, 'approve');
  return pending.id;
}

describe('approvals consumed by use', () => {
  it('refuses a second write with an already-used approval, and lets a reusable one cover both', async () => {
    const r = await createTestRuntime(db, [twice], { project });
    runtimes.push(r);
    const { runtime } = r;

    const once = await runtime.startRun({ workflow: 'twice', input: { reusable: false }, requester: parsePrincipal(REQUESTER) });
    const approvalId = await approveOnly(runtime, once.id);
    const failed = await waitForRun(runtime, once.id, 'failed');
    expect(failed.error).toMatchObject({ code: 'TG_TOOL_NOT_APPROVED' });
    expect((failed.error as { message: string }).message).toContain(`approval ${approvalId}`);
    expect((failed.error as { message: string }).message).toContain('was already used by step 1');
    expect(await orders(once.id)).toHaveLength(1);
    const { rows } = await db.pool.query<{ type: string; step_idx: number; payload: Record<string, unknown> }>(
      `SELECT type, step_idx, payload FROM tollgate.events WHERE run_id = $1 AND type IN ('approval.consumed', 'tool.refused') ORDER BY seq`,
      [once.id],
    );
    expect(rows).toEqual([
      { type: 'approval.consumed', step_idx: 1, payload: expect.objectContaining({ approvalId, tool: PO }) },
      { type: 'tool.refused', step_idx: 2, payload: expect.objectContaining({ approvalId, reason: `approval ${approvalId} was already used by step 1` }) },
    ]);

    const reusable = await runtime.startRun({ workflow: 'twice', input: { reusable: true }, requester: parsePrincipal(REQUESTER) });
    await approveOnly(runtime, reusable.id);
    const done = await waitForRun(runtime, reusable.id, 'succeeded');
    expect(done.output).toHaveLength(2);
    expect(await orders(reusable.id)).toHaveLength(2);
  });

  it('counts the step that used the approval once, however often it is replayed', async () => {
    const r = await createTestRuntime(db, [twice], { project });
    runtimes.push(r);
    const run = await r.runtime.startRun({ workflow: 'twice', input: { reusable: false }, requester: parsePrincipal(REQUESTER) });
    const approvalId = await approveOnly(r.runtime, run.id);
    await waitForRun(r.runtime, run.id, 'failed');
    // What a replay of step 1 does after a crash: the same check, with the approval already used by step 1.
    const call = prepareToolCall(builtinToolRegistry(), twice, run.id, PO, order);
    expect(await requireApproval(db.pool, run.id, 1, call)).toBe(approvalId);
    expect(await requireApproval(db.pool, run.id, 1, call)).toBe(approvalId);
    await expect(requireApproval(db.pool, run.id, 3, call)).rejects.toMatchObject({ code: 'TG_TOOL_NOT_APPROVED' });
    const consumed = await db.pool.query(`SELECT count(*)::int AS n FROM tollgate.events WHERE run_id = $1 AND type = 'approval.consumed'`, [run.id]);
    expect(consumed.rows[0]).toEqual({ n: 1 });
  });

  it('lets a write that failed and is retried in a later advance pass with the approval it used', async () => {
    let calls = 0;
    const flaky = defineTool({
      name: 'flaky.write',
      version: 1,
      description: 'fails its first call',
      input: z.object({ n: z.number() }),
      output: z.object({ n: z.number() }),
      effect: 'write',
      handler: (input) => {
        calls++;
        if (calls === 1) throw new Error('the first call fails');
        return input;
      },
    });
    const retried = defineWorkflow({
      name: 'retried',
      version: 1,
      description: 'approve, then a write that needs a retry',
      input: z.object({}),
      tools: ['flaky.write'],
      run: async (ctx) => {
        await ctx.approval('ok', { policy: { groups: ['finance'] }, summary: 'write', params: { n: 1 }, tool: 'flaky.write' });
        // The retry waits longer than the runtime waits inline (1 s here), so it happens in another advance.
        return ctx.tool('flaky.write', { n: 1 }, { retry: { maxAttempts: 2, initialDelayMs: 1500 } });
      },
    }) as unknown as WorkflowDefinition;
    const r = await createTestRuntime(db, [retried], { project, inlineWaitMaxMs: 1000, tools: builtinToolRegistry().register(flaky) });
    runtimes.push(r);
    const run = await r.runtime.startRun({ workflow: 'retried', input: {}, requester: parsePrincipal(REQUESTER) });
    await approveOnly(r.runtime, run.id);
    const done = await waitForRun(r.runtime, run.id, 'succeeded');
    expect(done.output).toEqual({ n: 1 });
    expect(calls).toBe(2);
    const waits = await db.pool.query(`SELECT payload->>'reason' AS reason FROM tollgate.events WHERE run_id = $1 AND type = 'run.waiting' ORDER BY seq`, [
      run.id,
    ]);
    expect(waits.rows).toEqual([{ reason: 'approval' }, { reason: 'retry' }]); // the retry ran in an advance of its own
  });
});
