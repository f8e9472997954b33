/**
 * The built-in `purchase-order` and `deploy` workflows end to end through the `tollgate` CLI,
 * with a real worker (startApp, mode worker) in this process and local HTTP servers standing in
 * for the deploy webhook, the version endpoint and the vendor.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { main } from '../src/cli/main.ts';
import type { ApprovalRecord } from '../src/approvals/types.ts';
import { paramsHash } from '../src/approvals/index.ts';
import { createTestDb, type TestDb, TEST_AUDIT_ENV } from './helpers/db.ts';
import { waitForRun } from './helpers/runtime.ts';
import { testLogger } from './helpers/log.ts';
import { startHttpTarget, type HttpTarget } from './helpers/http-target.ts';
import { poll } from './helpers/poll.ts';

const ALICE = 'slack:T1:UALICE';
const BOB = 'slack:T1:UBOB';
const REQUESTER = 'slack:T1:UREQ';
const MANAGER = 'teams:tenant-a:mgr-1';
/** This shell's own principal: the CLI always acts as the OS user, and may act for others only as configured. */
const ME = `cli:${os.hostname()}:${os.userInfo().username}`;

let db: TestDb;
let app: App;
let env: NodeJS.ProcessEnv;
let versions: HttpTarget;
let webhook: HttpTarget;
let vendor: HttpTarget;
const deployed = new Map<string, string>([
  ['api/production', '1.0.0'],
  ['api/staging', '1.0.0'],
]);

beforeAll(async () => {
  db = await createTestDb();
  versions = await startHttpTarget((req) => {
    const m = /^\/services\/([^/]+)\/([^/]+)\/version$/.exec(req.url);
    const v = m ? deployed.get(`${m[1]}/${m[2]}`) : undefined;
    return v ? { json: { version: v } } : { status: 404, text: 'no such service' };
  });
  webhook = await startHttpTarget((req) => {
    const b = JSON.parse(req.body) as { service: string; version: string; environment: string };
    deployed.set(`${b.service}/${b.environment}`, b.version);
    return { status: 202, json: { accepted: true } };
  });
  vendor = await startHttpTarget(() => ({ status: 200, json: { ok: true } }));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-cli-'));
  const configFile = path.join(dir, 'tollgate.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      groups: { finance: [ALICE, BOB, 'slack:T1:UCAROL'], 'release-managers': [MANAGER] },
      operators: [ALICE],
      cliDelegates: { [ME]: [ALICE, BOB, REQUESTER, MANAGER, 'slack:T2:UALICE'] },
      workflows: {
        'purchase-order': { approvalThreshold: 1000, notifyUrl: `${vendor.url}/orders` },
        deploy: {
          webhookUrl: `${webhook.url}/deploy`,
          currentVersionUrl: `${versions.url}/services/{service}/{environment}/version`,
          verifyAttempts: 3,
          nonProductionEnvironments: ['staging'],
        },
      },
      tools: { 'http.request': { allowedHosts: [versions.allowEntry, webhook.allowEntry] } },
    }),
  );
  env = { DATABASE_URL: db.url, ...TEST_AUDIT_ENV, TOLLGATE_CONFIG: configFile, LOG_LEVEL: 'silent', WORKER_POLL_INTERVAL_MS: '100', WORKER_CONCURRENCY: '4' };
  app = await startApp({ config: loadConfig(env), log: testLogger(), mode: 'worker' });
});
afterAll(async () => {
  await app?.stop();
  await Promise.all([versions, webhook, vendor].map((t) => t?.close()));
  await db.close();
});

async function tollgate(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'tollgate', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) }, env);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function pendingApproval(runId: string): Promise<ApprovalRecord> {
  return poll(
    async () => {
      const listed = await tollgate('approvals', 'list', '--json');
      return (JSON.parse(listed.out) as ApprovalRecord[]).find((a) => a.runId === runId);
    },
    { message: `a pending approval for ${runId} in \`approvals list\``, intervalMs: 50, retryErrors: false },
  );
}

async function orders(runId: string) {
  return (await db.pool.query('SELECT status, vendor, amount::float AS amount, currency FROM tollgate.purchase_orders WHERE run_id = $1', [runId])).rows;
}

describe('purchase-order from the CLI', () => {
  it('asks finance above the threshold, refuses outsiders with a non-zero exit, writes the ledger once approved, and shows who decided', async () => {
    const started = await tollgate('run', 'purchase-order', 'vendor=Acme', 'amount=5000', 'currency=eur', 'reason=new laptops', '--as', REQUESTER, '--json');
    expect(started.code).toBe(0);
    const runId = (JSON.parse(started.out) as { id: string }).id;
    const approval = await pendingApproval(runId);
    const params = { vendor: 'Acme', amount: 5000, currency: 'EUR', reason: 'new laptops' };
    expect(approval).toMatchObject({
      workflow: 'purchase-order',
      params,
      paramsHash: paramsHash(params),
      approvers: 'group finance (3 people)',
      tool: 'purchase-orders.create',
    });
    expect(approval.rationale).toContain('above the approval threshold of 1000');
    const text = await tollgate('approvals', 'list');
    expect(text.out).toContain(approval.id);

    const outsider = await tollgate('approve', approval.id, '--as', 'slack:T2:UALICE');
    expect(outsider.code).toBe(1);
    expect(outsider.err).toContain('Refused (not_allowed)');
    expect(outsider.err).toContain('slack:T2:UALICE is not one of the approvers');
    const self = await tollgate('approve', approval.id, '--as', REQUESTER);
    expect(self.code).toBe(1);

    const ok = await tollgate('approve', approval.id, '--as', ALICE, '--comment', 'budgeted');
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('Approved');
    const again = await tollgate('approve', approval.id, '--as', ALICE);
    expect(again.code).toBe(0);
    expect(again.out).toContain('already recorded');

    await waitForRun(app.runtime, runId, 'succeeded');
    expect(await orders(runId)).toEqual([{ status: 'open', vendor: 'Acme', amount: 5000, currency: 'EUR' }]);
    expect(vendor.requests.at(-1)?.headers['idempotency-key']).toMatch(new RegExp(`^${runId}:\\d+$`));

    const shown = await tollgate('runs', 'show', runId);
    expect(shown.out).toContain('Approvals');
    expect(shown.out).toContain(`${approval.id}  approval  APPROVED  params sha256 ${paramsHash(params)}`);
    expect(shown.out).toMatch(new RegExp(`\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z  ${ALICE}\\s+approve\\s+"budgeted" \\(via cli by ${ME}\\)`));
    const json = JSON.parse((await tollgate('runs', 'show', runId, '--json')).out) as { approvals: ApprovalRecord[] };
    expect(json.approvals[0]?.decisions).toEqual([expect.objectContaining({ principal: ALICE, decision: 'approve', comment: 'budgeted' })]);
  });

  it('passes small orders by rule, ends rejected orders without writing, and keeps the order for a person when the notification fails', async () => {
    const small = await tollgate('run', 'purchase-order', 'vendor=Pens Ltd', 'amount=200', 'currency=EUR', 'reason=pens', '--as', REQUESTER, '--wait');
    expect(small.code).toBe(0);
    expect(small.out).toContain('SUCCEEDED');
    const smallRun = (await app.runtime.listRuns({ workflow: 'purchase-order', limit: 1 }))[0]?.id as string;
    expect((await orders(smallRun))[0]).toMatchObject({ status: 'open', amount: 200 });
    expect((await tollgate('runs', 'show', smallRun)).out).toContain('approved by rule');

    const big = JSON.parse(
      (await tollgate('run', 'purchase-order', 'vendor=Acme', 'amount=3000', 'currency=EUR', 'reason=desks', '--as', REQUESTER, '--json')).out,
    ) as { id: string };
    const approval = await pendingApproval(big.id);
    expect((await tollgate('reject', approval.id, '--as', BOB, '--comment', 'no budget this quarter')).code).toBe(0);
    const rejected = await waitForRun(app.runtime, big.id, 'failed');
    expect(rejected.error).toMatchObject({ code: 'TG_APPROVAL_REJECTED' });
    expect((rejected.error as { message: string }).message).toContain(`${BOB} rejected approval ${approval.id}: "no budget this quarter"`);
    expect(await orders(big.id)).toEqual([]);
    const late = await tollgate('approve', approval.id, '--as', ALICE);
    expect(late.code).toBe(1);
    expect(late.err).toContain('already_resolved');

    vendor.handler = () => ({ status: 500, text: 'vendor down' });
    try {
      const failing = JSON.parse(
        (await tollgate('run', 'purchase-order', 'vendor=Acme', 'amount=50', 'currency=EUR', 'reason=cables', '--as', REQUESTER, '--json')).out,
      ) as { id: string };
      // The notification lets a person resolve it (docs/operator-control.md): the run ends failed
      // with the order kept, and Skip and compensate (an operator's) voids it.
      const ended = await waitForRun(app.runtime, failing.id, ['compensated', 'compensation_failed', 'failed']);
      expect(ended.status).toBe('failed');
      expect(await orders(failing.id)).toEqual([expect.objectContaining({ status: 'open', amount: 50 })]);
      expect((await tollgate('runs', 'resolve', failing.id, '--skip', '--reason', 'vendor down', '--as', ALICE)).code).toBe(0);
      await waitForRun(app.runtime, failing.id, 'compensated');
      expect(await orders(failing.id)).toEqual([expect.objectContaining({ status: 'void', amount: 50 })]);
    } finally {
      vendor.handler = () => ({ status: 200, json: { ok: true } });
    }
  });
});

describe('deploy from the CLI', () => {
  it('reads the current version, needs a release manager for production, POSTs the webhook with an idempotency key and verifies', async () => {
    const started = await tollgate('run', 'deploy', 'service=api', 'version=1.1.0', 'environment=production', '--as', REQUESTER, '--json');
    const runId = (JSON.parse(started.out) as { id: string }).id;
    const approval = await pendingApproval(runId);
    expect(approval).toMatchObject({
      workflow: 'deploy',
      params: { service: 'api', version: '1.1.0', environment: 'production', currentVersion: '1.0.0' },
      tool: 'http.request',
      toolInput: { method: 'POST', url: `${webhook.url}/deploy`, body: { service: 'api', version: '1.1.0', environment: 'production' } },
      approvers: 'group release-managers (1 person)',
      risk: 'high',
    });
    expect(webhook.requests).toHaveLength(0);
    const finance = await tollgate('approve', approval.id, '--as', ALICE);
    expect(finance.code).toBe(1);
    expect((await tollgate('approve', approval.id, '--as', MANAGER, '--comment', 'ship it')).code).toBe(0);

    const done = await waitForRun(app.runtime, runId, 'succeeded');
    expect(done.output).toMatchObject({ service: 'api', version: '1.1.0', previousVersion: '1.0.0', approvalId: approval.id });
    expect(webhook.requests).toHaveLength(1);
    const post = webhook.requests[0];
    expect(post?.method).toBe('POST');
    expect(JSON.parse(post?.body ?? '{}')).toEqual({ service: 'api', version: '1.1.0', environment: 'production' });
    expect(post?.headers['idempotency-key']).toMatch(new RegExp(`^${runId}:\\d+$`));
    const shown = await tollgate('runs', 'show', runId);
    expect(shown.out).toContain(`${MANAGER}`);
    expect(shown.out).toContain('"ship it"');
  });

  it('deploys to staging without a person, through a gate approved by rule', async () => {
    const res = await tollgate('run', 'deploy', 'service=api', 'version=2.0.0', 'environment=staging', '--as', REQUESTER, '--wait', '--json');
    expect(res.code).toBe(0);
    const detail = JSON.parse(res.out) as { run: { status: string; id: string } };
    expect(detail.run.status).toBe('succeeded');
    expect(deployed.get('api/staging')).toBe('2.0.0');
    const json = JSON.parse((await tollgate('runs', 'show', detail.run.id, '--json')).out) as { approvals: ApprovalRecord[] };
    expect(json.approvals[0]).toMatchObject({ status: 'approved', autoReason: 'staging is not a production environment' });
  });
});

describe('runs show --json', () => {
  it("prints the audit chain's hashes as hex, the same bytes the database holds, and no Buffer objects", async () => {
    const res = await tollgate('run', 'deploy', 'service=api', 'version=2.1.0', 'environment=staging', '--as', REQUESTER, '--wait', '--json');
    expect(res.code).toBe(0);
    expect(res.out).not.toContain('Buffer');
    const runId = (JSON.parse(res.out) as { run: { id: string } }).run.id;

    const shown = await tollgate('runs', 'show', runId, '--json');
    expect(shown.code).toBe(0);
    expect(shown.out).not.toContain('Buffer');
    const events = (JSON.parse(shown.out) as { events: { id: string; hash: unknown; prev_hash: unknown; payload_digest: unknown }[] }).events;
    const stored = (
      await db.pool.query<{ id: string; hash: string; prev_hash: string | null; payload_digest: string }>(
        "SELECT id::text, encode(hash, 'hex') AS hash, encode(prev_hash, 'hex') AS prev_hash, encode(payload_digest, 'hex') AS payload_digest FROM tollgate.events WHERE run_id = $1 ORDER BY id",
        [runId],
      )
    ).rows;
    expect(stored.length).toBeGreaterThan(3);
    expect(events.map((e) => ({ id: String(e.id), hash: e.hash, prev_hash: e.prev_hash, payload_digest: e.payload_digest }))).toEqual(stored);
    for (const e of events) expect(e.hash).toMatch(/^[0-9a-f]{64}$/);
  });
});
