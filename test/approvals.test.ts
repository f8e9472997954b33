import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { parseProjectConfig, type ProjectConfig } from '../src/config/project-config.ts';
import { getApproval, listPendingApprovals, listRunApprovals, paramsHash } from '../src/approvals/index.ts';
import type { ApprovalOptions, ApprovalRecord } from '../src/approvals/types.ts';
import type { Runtime } from '../src/runtime/runtime.ts';
import { parsePrincipal } from '../src/common/principals.ts';
import { verifyAuditChain } from '../src/audit/verify.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';
import { startHttpTarget, type HttpTarget } from './helpers/http-target.ts';
import { poll } from './helpers/poll.ts';

const ALICE = 'slack:T1:UALICE';
const BOB = 'slack:T1:UBOB';
const CAROL = 'slack:T1:UCAROL';
const REQUESTER = 'slack:T1:UREQ';
const MANAGER = 'teams:tenant-a:mgr-1';

let db: TestDb;
let target: HttpTarget;
let elsewhere: HttpTarget;
let project: ProjectConfig;
const runtimes: TestRuntime[] = [];

beforeAll(async () => {
  db = await createTestDb();
  target = await startHttpTarget((req) =>
    req.url === '/big' ? { text: 'x'.repeat(10_000) } : req.url === '/slow' ? { delayMs: 3000, json: { late: true } } : { status: 200, json: { ok: true } },
  );
  elsewhere = await startHttpTarget(() => ({ status: 200, json: { secret: 'should never be fetched' } }));
  project = parseProjectConfig({
    groups: { finance: [ALICE, BOB, CAROL], managers: [MANAGER] },
    tools: {
      'http.request': {
        allowedHosts: [target.allowEntry],
        timeoutMs: 500,
        maxResponseBytes: 4096,
        headers: { [target.host]: { Authorization: 'Bearer from-config' } },
      },
    },
  });
});
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.stop()));
});
afterAll(async () => {
  await target.close();
  await elsewhere.close();
  await db.close();
});

async function rt(workflows: WorkflowDefinition[]) {
  const r = await createTestRuntime(db, workflows, { project });
  runtimes.push(r);
  return r;
}

/** A workflow that opens one gate with the options given as input and returns its decision. */
const gate = defineWorkflow({
  name: 'gate',
  version: 1,
  description: 'one approval gate',
  input: z.object({ options: z.any() }),
  run: async (ctx) => ctx.approval('sign-off', ctx.input.options as ApprovalOptions),
}) as unknown as WorkflowDefinition;

async function pendingOf(runtime: Runtime, runId: string): Promise<ApprovalRecord> {
  return poll(async () => (await listRunApprovals(runtime.pool, runId)).find((a) => a.status === 'pending'), {
    message: `run ${runId} to open a pending approval`,
    retryErrors: false,
  });
}

async function eventTypes(runId: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ type: string }>('SELECT type FROM tollgate.events WHERE run_id = $1 ORDER BY seq', [runId]);
  return rows.map((r) => r.type);
}

async function startGate(runtime: Runtime, options: Partial<ApprovalOptions>, requester = REQUESTER) {
  const run = await runtime.startRun({
    workflow: 'gate',
    input: { options: { summary: 'Pay Acme', params: { vendor: 'Acme', amount: 5000 }, ...options } },
    requester: parsePrincipal(requester),
  });
  await waitForRun(runtime, run.id, 'waiting');
  return { run, approval: await pendingOf(runtime, run.id) };
}

describe('approval gates', () => {
  it('waits (no worker held) until 2 of 3 finance approvers approve, then resumes with the decision', async () => {
    const { runtime } = await rt([gate]);
    const { run, approval } = await startGate(runtime, { policy: { groups: ['finance'], quorum: 2 } });
    expect(approval).toMatchObject({ quorum: '2 of 3', required: 2, approvers: 'group finance (3 people)', requester: REQUESTER });
    expect((await runtime.getRun(run.id)).run).toMatchObject({ status: 'waiting', wait_reason: 'approval' });

    const first = await runtime.decide(approval.id, ALICE, 'approve', 'fine by me');
    expect(first).toMatchObject({ kind: 'recorded', approval: { status: 'pending', approvals: 1 } });
    expect(first.resolved).toBeUndefined();
    expect(first.message).toContain('1 of the 2 needed');
    expect((await runtime.getRun(run.id)).run.status).toBe('waiting');

    const second = await runtime.decide(approval.id, parsePrincipal(BOB), 'approve');
    expect(second).toMatchObject({ kind: 'recorded', resolved: 'approved', approval: { status: 'approved', approvals: 2 } });

    const done = await waitForRun(runtime, run.id, 'succeeded');
    expect(done.output).toMatchObject({
      approved: true,
      status: 'approved',
      approvalId: approval.id,
      by: BOB,
      paramsHash: paramsHash({ vendor: 'Acme', amount: 5000 }),
    });
    expect((done.output as { decisions: unknown[] }).decisions).toEqual([
      expect.objectContaining({ principal: ALICE, decision: 'approve', comment: 'fine by me' }),
      expect.objectContaining({ principal: BOB, decision: 'approve', comment: null }),
    ]);
    expect(await runtime.decide(approval.id, CAROL, 'approve')).toMatchObject({ kind: 'already_resolved' });
    const types = await eventTypes(run.id);
    expect(types.filter((t) => t === 'approval.decided')).toHaveLength(2);
    expect(types).toEqual(expect.arrayContaining(['approval.requested', 'approval.approved', 'run.waiting', 'run.resumed']));
  });

  it("refuses a requester's approval of their own request unless the policy allows it", async () => {
    const { runtime } = await rt([gate]);
    const { run, approval } = await startGate(runtime, { policy: { groups: ['finance'] } }, ALICE);
    const self = await runtime.decide(approval.id, ALICE, 'approve');
    expect(self.kind).toBe('not_allowed');
    expect(self.message).toContain('slack:T1:UALICE requested this run');
    expect(self.approval?.decisions).toEqual([]);
    expect(await runtime.decide(approval.id, BOB, 'approve')).toMatchObject({ kind: 'recorded', resolved: 'approved' });
    await waitForRun(runtime, run.id, 'succeeded');

    const allowed = await startGate(runtime, { policy: { groups: ['finance'], allowSelfApproval: true } }, ALICE);
    expect(await runtime.decide(allowed.approval.id, ALICE, 'approve')).toMatchObject({ kind: 'recorded', resolved: 'approved' });
    await waitForRun(runtime, allowed.run.id, 'succeeded');
  });

  it('refuses an outsider from another tenant even with the same user id, and hides the approval from them', async () => {
    const { runtime } = await rt([gate]);
    const { approval } = await startGate(runtime, { policy: { groups: ['finance', 'managers'] } });
    const otherTeam = await runtime.decide(approval.id, 'slack:T2:UALICE', 'approve');
    expect(otherTeam.kind).toBe('not_allowed');
    expect(otherTeam.message).toContain('no approver belongs to slack:T2');
    const otherTenant = await runtime.decide(approval.id, 'teams:tenant-b:mgr-1', 'reject');
    expect(otherTenant.kind).toBe('not_allowed');
    expect(otherTenant.approval).toMatchObject({ status: 'pending', decisions: [] });

    expect((await listPendingApprovals(db.pool, 'slack:T2:UALICE')).map((a) => a.id)).not.toContain(approval.id);
    expect((await listPendingApprovals(db.pool, ALICE)).map((a) => a.id)).toContain(approval.id);
    expect((await listPendingApprovals(db.pool, MANAGER)).map((a) => a.id)).toContain(approval.id);
  });

  it('answers a duplicate decision "already recorded" and records it once', async () => {
    const { runtime } = await rt([gate]);
    const { run, approval } = await startGate(runtime, { policy: { groups: ['finance'], quorum: 2 } });
    expect(await runtime.decide(approval.id, ALICE, 'approve')).toMatchObject({ kind: 'recorded' });
    const again = await runtime.decide(approval.id, ALICE, 'approve');
    expect(again.kind).toBe('already_recorded');
    expect(again.message).toContain('already recorded');
    // A different button from the same person is still the same one decision.
    expect(await runtime.decide(approval.id, ALICE, 'reject')).toMatchObject({ kind: 'already_recorded', approval: { status: 'pending' } });
    // Concurrent clicks (a platform retry racing the first delivery): exactly one is recorded.
    const racing = await Promise.all([1, 2, 3].map(() => runtime.decide(approval.id, CAROL, 'approve', 'race')));
    expect(racing.filter((o) => o.kind === 'recorded')).toHaveLength(1);
    expect(racing.filter((o) => o.kind === 'already_recorded' || o.kind === 'already_resolved')).toHaveLength(2);
    await waitForRun(runtime, run.id, 'succeeded');
    const view = (await getApproval(db.pool, approval.id)) as ApprovalRecord;
    expect(view.decisions.map((d) => d.principal)).toEqual([ALICE, CAROL]);
    expect((await eventTypes(run.id)).filter((t) => t === 'approval.decided')).toHaveLength(2);
  });

  it('rejects the gate when it expires, records it, and answers later decisions "expired"', async () => {
    const { runtime } = await rt([gate]);
    const { run, approval } = await startGate(runtime, { policy: { groups: ['finance'] }, timeout: '1s', onTimeout: 'reject' });
    expect(approval.onTimeout).toBe('rejected when it expires');
    const done = await waitForRun(runtime, run.id, 'succeeded');
    expect(done.output).toMatchObject({ approved: false, status: 'expired', approvalId: approval.id, by: null });
    expect(await eventTypes(run.id)).toContain('approval.expired');
    const late = await runtime.decide(approval.id, ALICE, 'approve');
    expect(late.kind).toBe('expired');
    expect(late.message).toContain('expired');
  });

  it('escalates to another policy when it expires, and the new approvers decide', async () => {
    const { runtime } = await rt([gate]);
    const { run, approval } = await startGate(runtime, {
      policy: { approvers: [ALICE] },
      timeout: '1s',
      onTimeout: { escalate: { groups: ['managers'] }, timeout: '1h' },
    });
    expect(approval.onTimeout).toBe('escalated to group managers when it expires');
    const view = await poll(
      async () => {
        const now = (await getApproval(db.pool, approval.id)) as ApprovalRecord;
        return now.escalations !== 0 && now;
      },
      { message: `approval ${approval.id} to escalate`, retryErrors: false },
    );
    expect(view).toMatchObject({ status: 'pending', escalations: 1, approvers: 'group managers (1 person)' });
    expect(await eventTypes(run.id)).toContain('approval.escalated');
    expect((await runtime.decide(approval.id, ALICE, 'approve')).kind).toBe('not_allowed');
    expect(await runtime.decide(approval.id, MANAGER, 'approve', 'escalated, ok')).toMatchObject({ kind: 'recorded', resolved: 'approved' });
    const done = await waitForRun(runtime, run.id, 'succeeded');
    expect(done.output).toMatchObject({ approved: true, by: MANAGER, comment: 'escalated, ok' });
  });

  it('ends the gate at the first rejection by anyone allowed', async () => {
    const { runtime } = await rt([gate]);
    const { run, approval } = await startGate(runtime, { policy: { groups: ['finance'], quorum: 'all' } });
    expect(approval.quorum).toBe('all 3');
    await runtime.decide(approval.id, ALICE, 'approve');
    expect(await runtime.decide(approval.id, BOB, 'reject', 'over budget')).toMatchObject({ kind: 'recorded', resolved: 'rejected' });
    const done = await waitForRun(runtime, run.id, 'succeeded');
    expect(done.output).toMatchObject({ approved: false, status: 'rejected', by: BOB, comment: 'over budget' });
  });

  it('voids an approval whose parameters changed before use and asks again; the old id answers "parameters changed"', async () => {
    const shown = { amount: 100 };
    const changing = defineWorkflow({
      name: 'changing',
      version: 1,
      description: 'params from outside the journal',
      input: z.object({}),
      run: async (ctx) => ctx.approval('pay', { policy: { groups: ['finance'] }, summary: `Pay ${shown.amount}`, params: { amount: shown.amount } }),
    }) as unknown as WorkflowDefinition;
    const { runtime } = await rt([changing]);
    const run = await runtime.startRun({ workflow: 'changing', input: {}, requester: parsePrincipal(REQUESTER) });
    const first = await pendingOf(runtime, run.id);
    expect(first.params).toEqual({ amount: 100 });

    const stale = await runtime.decide(first.id, ALICE, 'approve', undefined, { paramsHash: paramsHash({ amount: 999 }) });
    expect(stale.kind).toBe('parameters_changed');

    shown.amount = 900; // what the run would now do differs from what Alice is about to approve
    expect(await runtime.decide(first.id, ALICE, 'approve')).toMatchObject({ kind: 'recorded', resolved: 'approved' });
    const second = await poll(async () => (await listRunApprovals(db.pool, run.id)).find((a) => a.id !== first.id && a.status === 'pending'), {
      message: 'the second approval, asked again',
      retryErrors: false,
    });
    expect(second?.params).toEqual({ amount: 900 });
    expect(await getApproval(db.pool, first.id)).toMatchObject({ status: 'voided', supersededBy: second?.id });
    expect((await runtime.getRun(run.id)).run.status).toBe('waiting');
    const late = await runtime.decide(first.id, BOB, 'approve');
    expect(late.kind).toBe('parameters_changed');
    expect(late.message).toContain(second?.id);
    expect(await eventTypes(run.id)).toContain('approval.voided');

    await runtime.decide(second?.id, BOB, 'approve');
    const done = await waitForRun(runtime, run.id, 'succeeded');
    expect(done.output).toMatchObject({ approved: true, approvalId: second?.id, paramsHash: paramsHash({ amount: 900 }) });
  });

  it('closes a waiting gate when its run is cancelled, and later decisions say the run ended', async () => {
    const { runtime } = await rt([gate]);
    const { run, approval } = await startGate(runtime, { policy: { groups: ['finance'] } });
    await runtime.cancel(run.id, parsePrincipal(REQUESTER));
    await waitForRun(runtime, run.id, 'cancelled');
    expect(await getApproval(db.pool, approval.id)).toMatchObject({ status: 'cancelled' });
    expect((await listPendingApprovals(db.pool)).map((a) => a.id)).not.toContain(approval.id);
    const late = await runtime.decide(approval.id, BOB, 'approve');
    expect(late.kind).toBe('already_resolved');
    expect(late.message).toContain('has already ended (cancelled)');
    expect(await eventTypes(run.id)).toContain('approval.cancelled');
  });

  it('keeps every audit chain intact while many approvers decide concurrently with running workflows', async () => {
    const { runtime } = await rt([gate]);
    const started = await Promise.all(Array.from({ length: 8 }, () => startGate(runtime, { policy: { groups: ['finance'], quorum: 2 } })));
    const outcomes = await Promise.all(started.flatMap(({ approval }) => [ALICE, BOB, CAROL].map((who) => runtime.decide(approval.id, who, 'approve'))));
    expect(outcomes.filter((o) => o.resolved === 'approved')).toHaveLength(8);
    for (const { run } of started) await waitForRun(runtime, run.id, 'succeeded');
    const report = await verifyAuditChain(db.pool);
    expect(report.broken).toBeUndefined();
    expect(report.ok).toBe(true);
  });

  it('fails a run whose policy can never be satisfied, naming why', async () => {
    const { runtime } = await rt([gate]);
    const run = await runtime.startRun({
      workflow: 'gate',
      input: { options: { summary: 's', params: {}, policy: { groups: ['nobody-here'] } } },
      requester: parsePrincipal(REQUESTER),
    });
    const failed = await waitForRun(runtime, run.id, 'failed');
    expect(failed.error).toMatchObject({ code: 'TG_APPROVAL_POLICY' });
    expect((failed.error as { message: string }).message).toContain('group "nobody-here"');

    const badEscalation = await runtime.startRun({
      workflow: 'gate',
      input: { options: { summary: 's', params: {}, policy: { groups: ['finance'] }, timeout: '1h', onTimeout: { escalate: { groups: ['cfo-typo'] } } } },
      requester: parsePrincipal(REQUESTER),
    });
    const early = await waitForRun(runtime, badEscalation.id, 'failed');
    expect((early.error as { message: string }).message).toMatch(/escalation policy .* names group "cfo-typo"/);
  });
});

describe('controlled tools', () => {
  const order = { vendor: 'Acme', amount: 100, currency: 'EUR', reason: 'chairs' };
  const writer = defineWorkflow({
    name: 'writer',
    version: 1,
    description: 'approve one order, then write another',
    input: z.object({ write: z.any(), approve: z.any().optional() }),
    tools: ['purchase-orders.create'],
    run: async (ctx) => {
      if (ctx.input.approve) {
        const g = await ctx.approval('ok', { policy: { groups: ['finance'] }, summary: 'order', params: ctx.input.approve, tool: 'purchase-orders.create' });
        if (!g.approved) return 'rejected';
      }
      return ctx.tool('purchase-orders.create', ctx.input.write);
    },
  }) as unknown as WorkflowDefinition;

  async function orders(runId: string) {
    return (await db.pool.query('SELECT * FROM tollgate.purchase_orders WHERE run_id = $1', [runId])).rows;
  }

  it('refuses a write tool whose parameters no approved gate covers, and runs it when one does', async () => {
    const { runtime } = await rt([writer]);
    const bare = await runtime.startRun({ workflow: 'writer', input: { write: order }, requester: parsePrincipal(REQUESTER) });
    const refused = await waitForRun(runtime, bare.id, 'failed');
    expect(refused.error).toMatchObject({ code: 'TG_TOOL_NOT_APPROVED' });
    expect((refused.error as { message: string }).message).toContain('Tool purchase-orders.create writes');
    expect(await orders(bare.id)).toHaveLength(0);
    expect(await eventTypes(bare.id)).toContain('tool.refused');

    // Approved for 100, asked to write 5000: refused.
    const swapped = await runtime.startRun({
      workflow: 'writer',
      input: { approve: order, write: { ...order, amount: 5000 } },
      requester: parsePrincipal(REQUESTER),
    });
    await runtime.decide((await pendingOf(runtime, swapped.id)).id, ALICE, 'approve');
    expect((await waitForRun(runtime, swapped.id, 'failed')).error).toMatchObject({ code: 'TG_TOOL_NOT_APPROVED' });
    expect(await orders(swapped.id)).toHaveLength(0);

    const matching = await runtime.startRun({ workflow: 'writer', input: { approve: order, write: order }, requester: parsePrincipal(REQUESTER) });
    await runtime.decide((await pendingOf(runtime, matching.id)).id, ALICE, 'approve');
    const done = await waitForRun(runtime, matching.id, 'succeeded');
    expect(done.output).toMatchObject({ vendor: 'Acme', amount: 100, currency: 'EUR', status: 'open' });
    const rows = await orders(matching.id);
    expect(rows).toHaveLength(1);
    expect(rows[0].idempotency_key).toBe(`${matching.id}:1`);
    const step = (await runtime.getRun(matching.id)).steps.find((s) => s.kind === 'tool');
    expect(step).toMatchObject({ name: 'purchase-orders.create', input: order, status: 'succeeded' });
  });

  const fetcher = defineWorkflow({
    name: 'fetcher',
    version: 1,
    description: 'GET a URL',
    input: z.object({ url: z.string(), headers: z.record(z.string(), z.string()).optional() }),
    tools: ['http.request'],
    run: async (ctx) => ctx.tool('http.request', { method: 'GET', url: ctx.input.url, headers: ctx.input.headers }, { retry: { maxAttempts: 1 } }),
  }) as unknown as WorkflowDefinition;

  it('http.request refuses a host that is not on the allowlist, without contacting it', async () => {
    const { runtime } = await rt([fetcher]);
    const run = await runtime.startRun({ workflow: 'fetcher', input: { url: `${elsewhere.url}/secret` } });
    const failed = await waitForRun(runtime, run.id, 'failed');
    expect((failed.error as { message: string }).message).toContain(
      `http.request refused ${elsewhere.host}: it is not on the allowlist (${target.host} (allowInsecure, allowPrivate))`,
    );
    expect(elsewhere.requests).toHaveLength(0);
    const step = (await runtime.getRun(run.id)).steps[0];
    expect(step).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'TG_TOOL_HOST_NOT_ALLOWED' } });
  });

  it('http.request calls an allowlisted host with the idempotency key and configured credentials, keeping them out of the journal', async () => {
    const { runtime } = await rt([fetcher]);
    const run = await runtime.startRun({ workflow: 'fetcher', input: { url: `${target.url}/status` } });
    const done = await waitForRun(runtime, run.id, 'succeeded');
    expect(done.output).toMatchObject({ status: 200, body: { ok: true } });
    const seen = target.requests.at(-1);
    expect(seen?.headers['idempotency-key']).toBe(`${run.id}:0`);
    expect(seen?.headers.authorization).toBe('Bearer from-config');
    const detail = await runtime.getRun(run.id);
    expect(JSON.stringify(detail)).not.toContain('from-config');

    const sneaky = await runtime.startRun({ workflow: 'fetcher', input: { url: `${target.url}/x`, headers: { Authorization: 'Bearer leaked' } } });
    const failed = await waitForRun(runtime, sneaky.id, 'failed');
    expect(failed.error).toMatchObject({ code: 'TG_TOOL_INPUT_INVALID' });
    expect((failed.error as { message: string }).message).toContain('credential headers');
  });

  it('http.request gives up on a response over the size cap and on a slow host after the timeout', async () => {
    const { runtime } = await rt([fetcher]);
    const big = await runtime.startRun({ workflow: 'fetcher', input: { url: `${target.url}/big` } });
    const tooBig = await waitForRun(runtime, big.id, 'failed');
    expect((await runtime.getRun(big.id)).steps[0]?.error).toMatchObject({ code: 'TG_TOOL_RESPONSE_TOO_LARGE' });
    expect((tooBig.error as { message: string }).message).toContain('larger than 4096 bytes');

    const slow = await runtime.startRun({ workflow: 'fetcher', input: { url: `${target.url}/slow` } });
    const timedOut = await waitForRun(runtime, slow.id, 'failed');
    expect((timedOut.error as { message: string }).message).toContain(`http.request to ${target.host} timed out after 500 ms`);
  });
});
