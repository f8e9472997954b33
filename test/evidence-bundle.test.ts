/**
 * Evidence bundles (issue 10, item 4): `tollgate runs export <id>` writes one self-contained file,
 * and `tollgate audit verify --bundle <file>` checks it offline, with no database. A changed byte
 * of an approval (a parameter, its hash, a decision's principal, comment, via or time) fails the
 * check and names the field; so does a changed step output; a run whose payloads retention purged
 * still verifies through its digests. The console's download handler answers the same bundle.
 */
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { main } from '../src/cli/main.ts';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { parsePrincipal } from '../src/common/principals.ts';
import { listRunApprovals, paramsHash } from '../src/approvals/index.ts';
import { PO_TOOL } from '../src/tools/purchase-orders.ts';
import { builtinWorkflows } from '../src/workflows/index.ts';
import { builtinTools, ToolRegistry } from '../src/tools/index.ts';
import { purgeBefore } from '../src/audit/retention.ts';
import { exportEvidenceBundle } from '../src/audit/bundle.ts';
import { type EvidenceBundle } from '../src/audit/bundle-format.ts';
import { verifyEvidenceBundle } from '../src/audit/bundle-verify.ts';
import { evidenceBundleHandler } from '../src/audit/bundle-http.ts';
import { writeCheckpoint } from '../src/audit/checkpoint.ts';
import { appendEvent } from '../src/db/queries/events.ts';
import type { ModelCallRecord } from '../src/model/types.ts';
import { createTestDb, TEST_AUDIT_ENV, testAuditKey, type TestDb } from './helpers/db.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';
import { poll } from './helpers/poll.ts';

const ALICE = 'slack:T1:UALICE';
const REQUESTER = 'slack:T1:UREQ';
/** This shell's OS user: the CLI decides as it. */
const ME = `cli:${os.hostname()}:${os.userInfo().username}`;

/** A retried step, an approval by two people (in Slack and at the shell), then a write tool call it covers. */
const evidence = defineWorkflow({
  name: 'evidence',
  version: 3,
  description: 'pays a vendor after a quote and an approval',
  input: z.object({ vendor: z.string(), amount: z.number() }),
  tools: [PO_TOOL],
  run: async (ctx) => {
    const { vendor, amount } = ctx.input;
    const quote = await ctx.step(
      'fetch quote',
      ({ attempt }) => {
        if (attempt === 1) throw new Error('quote service busy');
        return { quoteId: `Q-${vendor}`, attempt };
      },
      { retry: { maxAttempts: 3, initialDelayMs: 10, jitter: 0 } },
    );
    const params = { vendor, amount, currency: 'EUR', reason: `quote ${quote.quoteId}` };
    const gate = await ctx.approval('sign-off', {
      policy: { approvers: [ALICE, ME], quorum: 'all' },
      summary: `Pay ${vendor} ${amount} EUR`,
      params,
      tool: PO_TOOL,
      rationale: 'above the threshold',
    });
    if (!gate.approved) throw new Error('rejected');
    const order = await ctx.tool<{ orderId: string }>(PO_TOOL, params);
    return { orderId: order.orderId };
  },
}) as unknown as WorkflowDefinition;

let db: TestDb;
let t: TestRuntime;
let dir: string;

beforeAll(async () => {
  db = await createTestDb();
  t = await createTestRuntime(db, [evidence, ...builtinWorkflows()]);
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-evidence-'));
});
afterAll(async () => {
  await t?.stop();
  await db?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

interface Ran {
  code: number;
  out: string;
  err: string;
}

async function cli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<Ran> {
  let out = '';
  let err = '';
  const code = await main(['node', 'tollgate', ...args], { out: (s) => (out += `${s}\n`), err: (s) => (err += s) }, { LOG_LEVEL: 'silent', ...env });
  return { code, out, err };
}

/** The CLI with the database (as an operator's shell has it). */
const online = (...args: string[]) => cli({ DATABASE_URL: db.url, ...TEST_AUDIT_ENV, TOLLGATE_DATA_DIR: path.join(dir, 'unused-data-dir') }, ...args);

/**
 * The CLI as an auditor's machine has it: no DATABASE_URL, and a data dir that does not exist.
 * Had the command booted the embedded PostgreSQL (or made an audit key), the data dir would exist.
 */
const OFFLINE_DATA_DIR = () => path.join(dir, 'offline-data-dir');
const offline = (env: NodeJS.ProcessEnv, ...args: string[]) => cli({ TOLLGATE_DATA_DIR: OFFLINE_DATA_DIR(), ...env }, ...args);

/** Starts a run, lets its quote step fail once and succeed, and has Alice (Slack) and this OS user (CLI) approve it. */
async function decidedRun(vendor: string): Promise<string> {
  const run = await t.runtime.startRun({ workflow: 'evidence', input: { vendor, amount: 5000 }, requester: parsePrincipal(REQUESTER) });
  await waitForRun(t.runtime, run.id, 'waiting');
  const approvalId = await poll(async () => (await listRunApprovals(db.pool, run.id)).find((a) => a.status === 'pending')?.id, {
    message: `run ${run.id} to open an approval`,
    retryErrors: false,
  });
  expect(await t.runtime.decide(approvalId, ALICE, 'approve', 'within budget', { via: 'slack' })).toMatchObject({ kind: 'recorded' });
  const approved = await online('approve', approvalId, '--comment', 'checked the quote');
  expect(approved, approved.err).toMatchObject({ code: 0 });
  await waitForRun(t.runtime, run.id, 'succeeded');
  return run.id;
}

let runId: string;
let file: string;
let exported: EvidenceBundle;

/** Writes a copy of the exported bundle with `change` applied, and verifies it offline. */
async function verifyChanged(change: (b: EvidenceBundle) => void, env: NodeJS.ProcessEnv = TEST_AUDIT_ENV, ...extra: string[]): Promise<Ran> {
  const copy = structuredClone(exported);
  change(copy);
  const changed = path.join(dir, `changed-${Math.random().toString(36).slice(2)}.json`);
  await fs.writeFile(changed, JSON.stringify(copy, null, 2));
  return offline(env, 'audit', 'verify', '--bundle', changed, ...extra);
}

describe('tollgate runs export and audit verify --bundle', () => {
  it('exports a run with a retried step, a tool call and a decided approval; the bundle verifies offline with no database', async () => {
    await writeCheckpoint(db.pool); // an earlier checkpoint naming the run's first events
    runId = await decidedRun('Acme');
    await writeCheckpoint(db.pool);
    file = path.join(dir, `${runId}.evidence.json`);

    const res = await online('runs', 'export', runId, '--out', file);
    expect(res, res.err).toMatchObject({ code: 0, err: '' });
    expect(res.out).toContain(`tollgate audit verify --bundle ${file}`);
    exported = JSON.parse(await fs.readFile(file, 'utf8')) as EvidenceBundle;

    // What the bundle holds.
    expect(exported).toMatchObject({
      format: 'tollgate-evidence/1',
      exportedBy: ME,
      run: { id: runId, workflow: 'evidence', workflowVersion: 3, status: 'succeeded', input: { vendor: 'Acme', amount: 5000 }, requester: REQUESTER },
    });
    const quote = exported.steps.find((s) => s.name === 'fetch quote');
    expect(quote).toMatchObject({ kind: 'step', status: 'succeeded', attempts: 2, output: { quoteId: 'Q-Acme', attempt: 2 } });
    const params = { vendor: 'Acme', amount: 5000, currency: 'EUR', reason: 'quote Q-Acme' };
    expect(exported.toolCalls).toEqual([
      expect.objectContaining({
        tool: PO_TOOL,
        version: 1,
        status: 'succeeded',
        input: params,
        output: expect.objectContaining({ orderId: expect.any(String) }),
      }),
    ]);
    expect(exported.versions).toMatchObject({ workflow: { name: 'evidence', version: 3 }, tools: [{ name: PO_TOOL, version: 1 }] });
    const [approval] = exported.approvals;
    expect(approval).toMatchObject({
      status: 'approved',
      params,
      paramsHash: paramsHash(params),
      summary: 'Pay Acme 5000 EUR',
      tool: PO_TOOL,
      policy: { approvers: [ALICE, ME].sort(), quorum: 'all', required: 2 },
    });
    expect(approval?.decisions).toEqual([
      expect.objectContaining({ principal: ALICE, decision: 'approve', comment: 'within budget', via: 'slack', osUser: null, eventSeq: expect.any(Number) }),
      expect.objectContaining({ principal: ME, decision: 'approve', comment: 'checked the quote', via: 'cli', osUser: ME, eventSeq: expect.any(Number) }),
    ]);
    expect(exported.chain.events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['run.created', 'step.retrying', 'approval.requested', 'approval.decided', 'approval.approved', 'run.succeeded']),
    );
    expect(exported.chain.head).toEqual({ seq: exported.chain.events.length, hash: exported.chain.events.at(-1)?.hash });
    expect(exported.chain.checkpoint?.claim).toEqual({ seq: exported.chain.events.length, hash: exported.chain.events.at(-1)?.hash });

    const verified = await offline(TEST_AUDIT_ENV, 'audit', 'verify', '--bundle', file);
    expect(verified, verified.err).toMatchObject({ code: 0, err: '' });
    expect(verified.out).toContain(`Evidence bundle of run ${runId} verified with the audit key`);
    expect(verified.out).toContain('1 approval with 2 decisions');
    expect(verified.out).toContain('Anchored by checkpoint');
    // No database was opened: neither an embedded PostgreSQL nor an audit key was made in the data dir.
    await expect(fs.stat(OFFLINE_DATA_DIR())).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it("names the changed field when any byte of an approval changed: a parameter, its hash, a decision's principal, comment, via or time", async () => {
    const decided = (b: EvidenceBundle, j: number) => {
      const d = b.approvals[0]?.decisions[j];
      if (!d) throw new Error('no decision');
      return d;
    };
    const seq = decided(exported, 0).eventSeq;
    const requested = exported.chain.events.find((e) => e.type === 'approval.requested')?.seq;

    const param = await verifyChanged((b) => ((b.approvals[0]?.params as { amount: number }).amount = 5001));
    expect(param.code).toBe(1);
    expect(param.err).toContain('approvals[0].params do not hash to approvals[0].paramsHash');
    expect(param.err).toContain('approvals[0].params.amount was changed after export');

    const hash = await verifyChanged((b) => {
      const a = b.approvals[0];
      if (a) a.paramsHash = `0${a.paramsHash.slice(1)}` === a.paramsHash ? `1${a.paramsHash.slice(1)}` : `0${a.paramsHash.slice(1)}`;
    });
    expect(hash.code).toBe(1);
    expect(hash.err).toContain(`approvals[0].paramsHash is "`);
    expect(hash.err).toContain(`but its chained approval.requested event (seq ${requested}) bound the approval to`);

    const principal = await verifyChanged((b) => (decided(b, 0).principal = 'slack:T1:UMALLORY'));
    expect(principal.code).toBe(1);
    expect(principal.err).toContain(
      `approvals[0].decisions[0].principal differs from its chained approval.decided event (seq ${seq}): the event says "${ALICE}"`,
    );

    const comment = await verifyChanged((b) => (decided(b, 0).comment = 'within budget!'));
    expect(comment.err).toContain(`approvals[0].decisions[0].comment differs from its chained approval.decided event (seq ${seq})`);

    const via = await verifyChanged((b) => (decided(b, 0).via = 'teams'));
    expect(via.err).toContain(`approvals[0].decisions[0].via differs from its chained approval.decided event (seq ${seq}): the event says "slack"`);

    const osUser = await verifyChanged((b) => (decided(b, 1).osUser = 'cli:elsewhere:root'));
    expect(osUser.err).toContain('approvals[0].decisions[1].osUser differs from its chained approval.decided event');

    const time = await verifyChanged((b) => {
      const d = decided(b, 0);
      d.decidedAt = d.decidedAt.replace(/(\d)Z$/, (_m, digit: string) => `${(Number(digit) + 1) % 10}Z`); // one microsecond
    });
    expect(time.err).toContain(`approvals[0].decisions[0].decidedAt differs from its chained approval.decided event (seq ${seq})`);

    // Fields no event records are sealed with the audit key.
    const summary = await verifyChanged((b) => {
      const a = b.approvals[0];
      if (a) a.summary = 'Pay Acme 50 EUR';
    });
    expect(summary.err).toContain('approvals[0].summary was changed after export: its seal does not verify under the audit key');
    const policy = await verifyChanged((b) => {
      const a = b.approvals[0];
      if (a) a.policy.required = 1;
    });
    expect(policy.err).toContain('approvals[0].policy');

    for (const r of [param, hash, principal, comment, via, osUser, time, summary, policy]) {
      expect(r.code).toBe(1);
      expect(r.err).toContain(`Evidence bundle of run ${runId} does NOT verify`);
    }
  });

  it('fails and names the field, or the value holding it, for a change to any single value of an approval', () => {
    // Every value in the approval, however deep (parameters, policy, decisions …), changed by one
    // character (or one unit), one at a time.
    const leaves: { path: string; get: (b: EvidenceBundle) => Record<string, unknown>; key: string }[] = [];
    const walk = (value: unknown, at: string, get: (b: EvidenceBundle) => Record<string, unknown>) => {
      if (value === null || typeof value !== 'object') return;
      for (const [key, v] of Object.entries(value)) {
        const here = Array.isArray(value) ? `${at}[${key}]` : `${at}.${key}`;
        const child = (b: EvidenceBundle) => get(b)[key] as Record<string, unknown>;
        if (v !== null && typeof v === 'object' && Object.keys(v).length > 0) walk(v, here, child);
        else leaves.push({ path: here, get, key });
      }
    };
    walk(exported.approvals[0], 'approvals[0]', (b) => b.approvals[0] as unknown as Record<string, unknown>);
    expect(leaves.length).toBeGreaterThan(30);
    const changed = (v: unknown): unknown =>
      typeof v === 'string'
        ? v.length
          ? v.slice(0, -1) + (v.at(-1) === 'x' ? 'y' : 'x')
          : 'x'
        : typeof v === 'number'
          ? v + 1
          : typeof v === 'boolean'
            ? !v
            : v === null
              ? 'x'
              : Array.isArray(v)
                ? ['x']
                : { x: 1 };
    const missed: string[] = [];
    for (const leaf of leaves) {
      const copy = structuredClone(exported);
      const holder = leaf.get(copy);
      holder[leaf.key] = changed(holder[leaf.key]);
      const report = verifyEvidenceBundle(copy, { auditKey: testAuditKey });
      // The problem names this value, or the value that holds it (a parameter's change is named at
      // `params`, which no longer hash to the bound hash), never only the bundle or the approval.
      const named = report.problems.some(
        (p) => p.field === leaf.path || (p.field !== 'approvals[0]' && (leaf.path.startsWith(`${p.field}.`) || leaf.path.startsWith(`${p.field}[`))),
      );
      if (report.ok || !named) missed.push(`${leaf.path}: ${report.ok ? 'verified' : report.problems.map((p) => p.field).join(', ')}`);
    }
    expect(missed).toEqual([]);
  });

  it('catches a changed step output, a changed tool call and an edited chained event', async () => {
    const output = await verifyChanged((b) => {
      const s = b.steps.find((x) => x.name === 'fetch quote');
      if (s) (s.output as { quoteId: string }).quoteId = 'Q-Other';
    });
    expect(output.code).toBe(1);
    const idx = exported.steps.findIndex((x) => x.name === 'fetch quote');
    expect(output.err).toContain(`steps[${idx}].output.quoteId was changed after export`);

    const tool = await verifyChanged((b) => {
      const c = b.toolCalls[0];
      if (c) (c.output as { orderId: string }).orderId = 'po_forged';
    });
    expect(tool.err).toContain('toolCalls[0].output differs from steps[');

    const k = exported.chain.events.findIndex((e) => e.type === 'approval.decided');
    const event = await verifyChanged((b) => {
      const e = b.chain.events[k];
      if (e?.payload) e.payload = e.payload.replace('within budget', 'over budget');
    });
    expect(event.err).toContain(`chain.events[${k}].payload (seq ${k + 1}, approval.decided) does not match its chained digest`);

    const truncated = await verifyChanged((b) => {
      b.chain.events.pop();
    });
    expect(truncated.err).toContain('chain.head is #');
  });

  it('names the version each tool call ran with, from its chained event, also after the tool was upgraded; a changed version is named', async () => {
    // The run's purchase-order call ran with version 1, as its step.started event records.
    const call = exported.toolCalls[0];
    expect(call).toMatchObject({ tool: PO_TOOL, version: 1, versionFrom: 'call' });
    const started = exported.chain.events.filter((e) => e.type === 'step.started' && e.stepIdx === call?.stepIdx).pop();
    expect(JSON.parse(started?.payload ?? '{}')).toMatchObject({ tool: PO_TOOL, toolVersion: 1 });

    // Exported by a deployment whose purchase-order tool is now version 2: the call still says 1.
    const upgraded = new ToolRegistry().register(...builtinTools().map((tool) => (tool.name === PO_TOOL ? { ...tool, version: 2 } : tool)));
    const later = await exportEvidenceBundle(db.pool, runId, { auditKey: testAuditKey, registry: t.registry, tools: upgraded });
    expect(later.toolCalls[0]).toMatchObject({ version: 1, versionFrom: 'call' });
    expect(later.versions.tools).toContainEqual({ name: PO_TOOL, version: 2 });
    expect(verifyEvidenceBundle(later, { auditKey: testAuditKey })).toMatchObject({ ok: true, problems: [] });

    // Claiming another version, or passing the recorded one off as the registry's, is named, with or without the key.
    const bumped = structuredClone(later);
    if (bumped.toolCalls[0]) bumped.toolCalls[0].version = 2;
    expect(verifyEvidenceBundle(bumped, {}).problems.map((p) => p.message)).toContain(
      "toolCalls[0].version is 2, but the call's chained step.started event says 1",
    );
    const disowned = structuredClone(later);
    if (disowned.toolCalls[0]) Object.assign(disowned.toolCalls[0], { version: 2, versionFrom: 'registry' });
    expect(verifyEvidenceBundle(disowned, {}).problems.map((p) => p.field)).toContain('toolCalls[0].versionFrom');
  });

  it('without the audit key: refuses unless --without-key, then checks what anyone can and says what it could not', async () => {
    const refused = await offline({}, 'audit', 'verify', '--bundle', file);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('needs the audit key its links and seals were made with: set TOLLGATE_AUDIT_KEY');

    const partial = await offline({}, 'audit', 'verify', '--bundle', file, '--without-key');
    expect(partial, partial.err).toMatchObject({ code: 0, err: '' });
    expect(partial.out).toContain('is self-consistent');
    expect(partial.out).toContain('NOT authenticated: no audit key was given');
    expect(partial.out).toContain('Not checked without the audit key: the links of');
    expect(partial.out).toContain('Not checked without the audit key: the seals of the bundle');

    // A decision's principal is still compared with its chained event.
    const changed = await verifyChanged(
      (b) => {
        const d = b.approvals[0]?.decisions[0];
        if (d) d.principal = 'slack:T1:UMALLORY';
      },
      {},
      '--without-key',
    );
    expect(changed.code).toBe(1);
    expect(changed.err).toContain('approvals[0].decisions[0].principal differs from its chained approval.decided event');
    const copy = structuredClone(exported);
    const d = copy.approvals[0]?.decisions[0];
    if (d) d.principal = 'slack:T1:UMALLORY';
    const report = verifyEvidenceBundle(copy);
    expect(report).toMatchObject({ ok: false, keyed: false });
    expect(report.problems.map((p) => p.field)).toEqual(['approvals[0].decisions[0].principal']);

    const wrongKey = await offline({ TOLLGATE_AUDIT_KEY: 'ab'.repeat(32) }, 'audit', 'verify', '--bundle', file);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.err).toContain('chain.keyFingerprint names another audit key');
  });

  it('refuses to overwrite an earlier export unless --force, and refuses a file that is not a bundle', async () => {
    const again = await online('runs', 'export', runId, '--out', file);
    expect(again.code).toBe(1);
    expect(again.err).toContain(`${file} already exists; nothing was written. Choose another --out file, or add --force to overwrite it.`);
    expect(JSON.parse(await fs.readFile(file, 'utf8'))).toEqual(exported);
    const forced = await online('runs', 'export', runId, '--out', file, '--force');
    expect(forced.code).toBe(0);

    const stdout = await online('runs', 'export', runId);
    expect(JSON.parse(stdout.out)).toMatchObject({ format: 'tollgate-evidence/1', run: { id: runId } });

    const unknown = await online('runs', 'export', 'run_nope');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('No run with id "run_nope"');

    const notBundle = path.join(dir, 'not-a-bundle.json');
    await fs.writeFile(notBundle, JSON.stringify({ hello: 'world' }));
    const refused = await offline(TEST_AUDIT_ENV, 'audit', 'verify', '--bundle', notBundle);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain(`${notBundle} is not an evidence bundle: its "format" is nothing, not "tollgate-evidence/1"`);
    const missing = await offline({}, 'audit', 'verify', '--bundle', path.join(dir, 'missing.json'));
    expect(missing.code).toBe(1);
    expect(missing.err).toContain(`--bundle ${path.join(dir, 'missing.json')} cannot be read (ENOENT)`);
  });

  it('serves the console download: the bundle as an attachment named after the run, 404 for a run it may not show', async () => {
    const handler = evidenceBundleHandler({ pool: db.pool, authorize: (_req, id) => id !== 'run_hidden' && 'console:local:auditor' });
    const server = http.createServer((req, res) => {
      handler(req, res).catch((e: unknown) => res.writeHead(500).end(String(e)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const res = await fetch(`${base}/console/runs/${runId}/evidence`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${runId}.evidence.json"`);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      const bundle = (await res.json()) as EvidenceBundle;
      expect(bundle).toMatchObject({ format: 'tollgate-evidence/1', exportedBy: 'console:local:auditor', run: { id: runId } });
      expect(verifyEvidenceBundle(bundle, { auditKey: testAuditKey })).toMatchObject({ ok: true, keyed: true, problems: [] });

      expect((await fetch(`${base}/console/runs/run_nope/evidence`)).status).toBe(404);
      const hidden = await fetch(`${base}/console/runs/run_hidden/evidence`);
      expect(hidden.status).toBe(404);
      expect(await hidden.text()).toBe('No run with id "run_hidden".\n');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("lists the run's model calls from their chained model.called events (redacted request, model, prompt version, tokens, cost)", async () => {
    // The model layer journals each call as a model.called event (src/model/types.ts ModelCallRecord).
    const record: ModelCallRecord = {
      model: 'gpt-test',
      prompt: { name: 'classify-order', version: 2 },
      request: [{ role: 'user', content: 'Order for [[EMAIL_1]]' }],
      response: { category: 'office' },
      inputTokens: 120,
      outputTokens: 8,
      costUsd: 0.00042,
      latencyMs: 310,
      dropped: [],
      error: null,
    };
    await appendEvent(db.pool, { runId, type: 'model.called', stepIdx: 0, payload: { ...record } });
    const bundle = await exportEvidenceBundle(db.pool, runId);
    expect(bundle.modelCalls).toEqual([
      expect.objectContaining({
        model: 'gpt-test',
        prompt: { name: 'classify-order', version: 2 },
        request: record.request,
        inputTokens: 120,
        outputTokens: 8,
        costUsd: 0.00042,
        purged: false,
      }),
    ]);
    expect(verifyEvidenceBundle(bundle, { auditKey: testAuditKey })).toMatchObject({ ok: true, modelCalls: 1 });

    const cheaper = structuredClone(bundle);
    const call = cheaper.modelCalls[0];
    if (call) call.costUsd = 0.0001;
    const seq = bundle.modelCalls[0]?.seq;
    expect(verifyEvidenceBundle(cheaper, { auditKey: testAuditKey }).problems.map((p) => p.message)).toEqual([
      `modelCalls[0].costUsd differs from its chained model.called event (seq ${seq})`,
    ]);
  });

  it('bundles of other shapes verify too: a failed run with a sleep and recorded values, an order approved by rule, a cancelled run', async () => {
    const failed = await t.runtime.startRun({
      workflow: 'demo',
      input: { name: 'Ada', sleepMs: 0, failAt: 'transform' },
      requester: parsePrincipal(REQUESTER),
    });
    const byRule = await t.runtime.startRun({
      workflow: 'purchase-order',
      input: { vendor: 'Initech', amount: 10, currency: 'EUR', reason: 'pens' },
      requester: parsePrincipal(REQUESTER),
    });
    const cancelled = await t.runtime.startRun({ workflow: 'demo', input: { name: 'Bob', sleepMs: 600_000 }, requester: parsePrincipal(REQUESTER) });
    await waitForRun(t.runtime, failed.id, 'failed');
    await waitForRun(t.runtime, byRule.id, 'succeeded');
    await waitForRun(t.runtime, cancelled.id, 'waiting');
    await t.runtime.cancel(cancelled.id, null);
    await waitForRun(t.runtime, cancelled.id, ['cancelled', 'compensated']);
    for (const id of [failed.id, byRule.id, cancelled.id]) {
      const bundle = await exportEvidenceBundle(db.pool, id);
      const report = verifyEvidenceBundle(bundle, { auditKey: testAuditKey });
      expect(report.problems, id).toEqual([]);
      expect(report.ok).toBe(true);
    }
    const auto = (await exportEvidenceBundle(db.pool, byRule.id)).approvals[0];
    expect(auto).toMatchObject({ status: 'approved', autoReason: expect.stringContaining('at or below the approval threshold'), decisions: [] });
  });

  // Last: the purge takes every finished run of this file's database.
  it('a bundle of a run whose payloads retention purged still verifies through its digests', async () => {
    const purgedRun = await decidedRun('Globex');
    await purgeBefore(db.pool, new Date(Date.now() + 1000), { vacuumAfterEvents: 0 });
    const bundle = await exportEvidenceBundle(db.pool, purgedRun);
    expect(bundle.run.journalPurgedAt).not.toBeNull();
    expect(bundle.chain.events.every((e) => e.payload === null)).toBe(true);
    expect(bundle.chain.retention?.event.type).toBe('retention.purged');
    expect(bundle.approvals[0]?.decisions.map((d) => d.principal)).toEqual([ALICE, ME]);

    const purgedFile = path.join(dir, 'purged.evidence.json');
    await fs.writeFile(purgedFile, JSON.stringify(bundle));
    const verified = await offline(TEST_AUDIT_ENV, 'audit', 'verify', '--bundle', purgedFile);
    expect(verified, verified.err).toMatchObject({ code: 0, err: '' });
    expect(verified.out).toContain('verified with the audit key');
    expect(verified.out).toMatch(/Note: \d+ event payloads were purged by retention: their digests still link/);

    // The decisions' principals and times are still bound to their chained events.
    const copy = structuredClone(bundle);
    const d = copy.approvals[0]?.decisions[0];
    if (d) d.principal = 'slack:T1:UMALLORY';
    const report = verifyEvidenceBundle(copy, { auditKey: testAuditKey });
    expect(report.problems.map((p) => p.field)).toContain('approvals[0].decisions[0].principal');
  });
});
