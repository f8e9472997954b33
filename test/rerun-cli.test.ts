/**
 * Edit and retry (`tollgate runs retry <id> --set key=value`) and Resolve by hand (`tollgate runs
 * resolve`) on the built-in purchase-order, through the real CLI entry point, with a real worker
 * in this process and a local server standing in for the vendor's notification endpoint. The
 * vendor answers 500 unless the order names its order desk (`vendorContact`), so an edit of the
 * input is what fixes the failure (docs/operator-control.md).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { main } from '../src/cli/main.ts';
import type { ApprovalRecord } from '../src/approvals/types.ts';
import { createTestDb, type TestDb, TEST_AUDIT_ENV } from './helpers/db.ts';
import { waitForRun } from './helpers/runtime.ts';
import { testLogger } from './helpers/log.ts';
import { startHttpTarget, type HttpTarget } from './helpers/http-target.ts';
import { poll } from './helpers/poll.ts';

const ALICE = 'slack:T1:UALICE'; // finance, operator
const REQUESTER = 'slack:T1:UREQ';
const ME = `cli:${os.hostname()}:${os.userInfo().username}`;
const DESK = 'orders@acme.example';

let db: TestDb;
let app: App;
let env: NodeJS.ProcessEnv;
let vendor: HttpTarget;

beforeAll(async () => {
  db = await createTestDb();
  vendor = await startHttpTarget((req) => {
    const body = JSON.parse(req.body) as { vendorContact?: string };
    return body.vendorContact === DESK ? { json: { ok: true } } : { status: 500, text: 'no such order desk' };
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-rerun-'));
  const configFile = path.join(dir, 'tollgate.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      groups: { finance: [ALICE, 'slack:T1:UBOB'] },
      operators: [ALICE],
      cliDelegates: { [ME]: [ALICE, REQUESTER] },
      workflows: { 'purchase-order': { approvalThreshold: 1000, notifyUrl: `${vendor.url}/orders` } },
    }),
  );
  env = { DATABASE_URL: db.url, ...TEST_AUDIT_ENV, TOLLGATE_CONFIG: configFile, LOG_LEVEL: 'silent', WORKER_POLL_INTERVAL_MS: '100', WORKER_CONCURRENCY: '4' };
  app = await startApp({ config: loadConfig(env), log: testLogger(), mode: 'worker' });
});
afterAll(async () => {
  await app?.stop();
  await vendor?.close();
  await db?.close();
});

async function tollgate(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'tollgate', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) }, env);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function orders(runId: string) {
  return (await db.pool.query('SELECT status, amount::float AS amount FROM tollgate.purchase_orders WHERE run_id = $1 ORDER BY created_at', [runId])).rows;
}

async function events(runId: string, type: string) {
  return (
    await db.pool.query<{ actor: unknown; payload: Record<string, unknown>; step_idx: number | null }>(
      'SELECT actor, payload, step_idx FROM tollgate.events WHERE run_id = $1 AND type = $2 ORDER BY id',
      [runId, type],
    )
  ).rows;
}

/** The run's evidence bundle, exported and verified offline with the CLI: true when it verifies. */
async function evidenceVerifies(runId: string): Promise<string> {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'tollgate-rerun-evidence-')), 'bundle.json');
  expect((await tollgate('runs', 'export', runId, '--out', file)).code).toBe(0);
  const verified = await tollgate('audit', 'verify', '--bundle', file);
  return verified.code === 0 ? 'verified' : verified.out + verified.err;
}

async function startOrder(...params: string[]): Promise<string> {
  const res = await tollgate('run', 'purchase-order', ...params, '--as', REQUESTER, '--json');
  expect(res.code).toBe(0);
  return (JSON.parse(res.out) as { id: string }).id;
}

async function pendingApproval(runId: string, not?: string): Promise<ApprovalRecord> {
  return poll(
    async () => {
      const listed = JSON.parse((await tollgate('approvals', 'list', '--json')).out) as ApprovalRecord[];
      return listed.find((a) => a.runId === runId && a.id !== not);
    },
    { message: `a pending approval for ${runId}`, intervalMs: 50, retryErrors: false },
  );
}

describe('Edit and retry from the CLI', () => {
  it('a failed notification, fixed by editing the input, resumes at the failed step with the earlier steps untouched', async () => {
    const runId = await startOrder('vendor=Acme', 'amount=200', 'currency=EUR', 'reason=pens', 'vendorContact=desk@acme.example');
    const failed = await waitForRun(app.runtime, runId, ['failed', 'compensated']);
    expect(failed.status).toBe('failed'); // the notification allows a person's resolution: the order is kept for them
    expect(await orders(runId)).toEqual([{ status: 'open', amount: 200 }]);

    const dry = await tollgate('runs', 'retry', runId, '--set', `vendorContact=${DESK}`, '--dry-run', '--as', REQUESTER);
    expect(dry).toMatchObject({ code: 0, err: '' });
    expect(dry.out).toContain('Dry run, nothing changed. Changes "vendorContact". Every completed step is kept');
    expect(dry.out).toContain('The run then resumes at "notify vendor".');
    expect((await app.runtime.getRun(runId)).run.status).toBe('failed');

    const bad = await tollgate('runs', 'retry', runId, '--set', 'amount=lots', '--as', REQUESTER);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('amount');
    expect(await events(runId, 'run.edited')).toEqual([]);

    const res = await tollgate('runs', 'retry', runId, '--set', `vendorContact=${DESK}`, '--as', REQUESTER);
    expect(res).toMatchObject({ code: 0, err: '' });
    expect(res.out).toContain(`${runId} edited and queued again.`);
    const done = await waitForRun(app.runtime, runId, 'succeeded');
    expect(done.input).toMatchObject({ vendorContact: DESK });
    // One order, written once; the approval and the ledger write were not repeated.
    expect(await orders(runId)).toEqual([{ status: 'open', amount: 200 }]);
    expect(await events(runId, 'approval.auto_approved')).toHaveLength(1);
    const ledgerStarts = (await events(runId, 'step.started')).filter((e) => e.payload.step === 'purchase-orders.create');
    expect(ledgerStarts).toHaveLength(1);
    const [edited] = await events(runId, 'run.edited');
    expect(edited).toMatchObject({
      actor: { platform: 'slack', tenant: 'T1', user: 'UREQ' },
      payload: { changed: { vendorContact: { from: 'desk@acme.example', to: DESK } }, rerun: [], via: 'cli', osUser: ME },
    });
    expect(vendor.requests.at(-1)?.headers['idempotency-key']).toMatch(new RegExp(`^${runId}:\\d+$`));
  });

  it('an edit that changes an approved amount undoes the order, voids the approval and asks again', async () => {
    const runId = await startOrder('vendor=Acme', 'amount=3000', 'currency=EUR', 'reason=desks');
    const first = await pendingApproval(runId);
    expect((await tollgate('approve', first.id, '--as', ALICE)).code).toBe(0);
    await waitForRun(app.runtime, runId, 'failed');
    expect(await orders(runId)).toEqual([{ status: 'open', amount: 3000 }]);

    const dry = await tollgate('runs', 'retry', runId, '--set', 'amount=2500', '--set', `vendorContact=${DESK}`, '--dry-run', '--as', REQUESTER);
    expect(dry.out).toContain('Steps "approval", "purchase-orders.create" will run again; "purchase-orders.create" will be undone first.');
    expect(dry.out).toContain('"approval" will be asked again if its parameters changed.');

    expect((await tollgate('runs', 'retry', runId, '--set', 'amount=2500', '--set', `vendorContact=${DESK}`, '--as', REQUESTER)).code).toBe(0);
    const second = await pendingApproval(runId, first.id);
    expect(second.params).toMatchObject({ amount: 2500 });
    expect(await orders(runId)).toEqual([{ status: 'void', amount: 3000 }]);
    const voided = await events(runId, 'approval.voided');
    expect(voided[0]?.payload).toMatchObject({ approvalId: first.id, supersededBy: second.id });

    expect((await tollgate('approve', second.id, '--as', ALICE)).code).toBe(0);
    await waitForRun(app.runtime, runId, 'succeeded');
    expect(await orders(runId)).toEqual([
      { status: 'void', amount: 3000 },
      { status: 'open', amount: 2500 },
    ]);
    // The re-written order has a key of the run's new generation, not the undone order's.
    const keys = (
      await db.pool.query<{ idempotency_key: string }>('SELECT idempotency_key FROM tollgate.purchase_orders WHERE run_id = $1 ORDER BY created_at', [runId])
    ).rows;
    expect(keys[1]?.idempotency_key).toMatch(/:g1$/);
    expect(await evidenceVerifies(runId)).toBe('verified'); // the undone and re-run steps still tell a consistent, chained story
  });
});

describe('Resolve by hand from the CLI', () => {
  it('an operator marks the failed step done with an output and a reason; the requester may not', async () => {
    const runId = await startOrder('vendor=Acme', 'amount=100', 'currency=EUR', 'reason=ink');
    await waitForRun(app.runtime, runId, 'failed');

    const refused = await tollgate('runs', 'resolve', runId, '--output', '{"status": 200}', '--reason', 'phoned them', '--as', REQUESTER);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toContain('Only an operator can resolve');

    const badOutput = await tollgate('runs', 'resolve', runId, '--output', '{"status": "ok"}', '--reason', 'phoned them', '--as', ALICE);
    expect(badOutput.code).not.toBe(0);
    expect(badOutput.err).toContain('does not match its output schema');

    const res = await tollgate('runs', 'resolve', runId, '--output', '{"status": 200, "note": "phoned"}', '--reason', 'phoned the vendor', '--as', ALICE);
    expect(res).toMatchObject({ code: 0, err: '' });
    const done = await waitForRun(app.runtime, runId, 'succeeded');
    expect(done.output).toMatchObject({ orderId: expect.stringMatching(/^po_/) });
    const { steps } = await app.runtime.getRun(runId);
    expect(steps.find((s) => s.name === 'notify vendor')).toMatchObject({ status: 'succeeded', output: { status: 200, note: 'phoned' } });
    expect(await events(runId, 'step.resolved_by_hand')).toEqual([
      expect.objectContaining({
        actor: { platform: 'slack', tenant: 'T1', user: 'UALICE' },
        payload: { step: 'notify vendor', output: { status: 200, note: 'phoned' }, reason: 'phoned the vendor', via: 'cli', osUser: ME },
      }),
    ]);
    expect(await orders(runId)).toEqual([{ status: 'open', amount: 100 }]);
    expect(await evidenceVerifies(runId)).toBe('verified'); // a step done by hand is recorded by its chained event
  });

  it('Skip and compensate voids the order; Give up leaves it failed and no longer retryable', async () => {
    const skipped = await startOrder('vendor=Acme', 'amount=60', 'currency=EUR', 'reason=cables');
    await waitForRun(app.runtime, skipped, 'failed');
    expect((await tollgate('runs', 'resolve', skipped, '--skip', '--reason', 'vendor went bust', '--as', ALICE)).code).toBe(0);
    await waitForRun(app.runtime, skipped, 'compensated');
    expect(await orders(skipped)).toEqual([{ status: 'void', amount: 60 }]);
    expect((await events(skipped, 'run.skip_requested'))[0]?.payload).toMatchObject({ step: 'notify vendor', reason: 'vendor went bust' });

    const givenUp = await startOrder('vendor=Acme', 'amount=70', 'currency=EUR', 'reason=chairs');
    await waitForRun(app.runtime, givenUp, 'failed');
    const res = await tollgate('runs', 'resolve', givenUp, '--give-up', '--reason', 'finance will call them', '--as', ALICE);
    expect(res.code).toBe(0);
    expect((await app.runtime.getRun(givenUp)).run.status).toBe('failed');
    expect(await orders(givenUp)).toEqual([{ status: 'open', amount: 70 }]);
    const retry = await tollgate('runs', 'retry', givenUp, '--as', ALICE);
    expect(retry.code).not.toBe(0);
    expect(retry.err).toContain(`was given up by ${ALICE} (finance will call them)`);
    const again = await tollgate('runs', 'resolve', givenUp, '--skip', '--reason', 'x', '--as', ALICE);
    expect(again.err).toContain(
      `was given up by ${ALICE} (finance will call them); it stays failed for a person to finish, so it cannot take "Skip and compensate".`,
    );
  });
});
