/**
 * Edit and retry and Resolve by hand in the web console, in a real browser (Debian's Chromium
 * driven by playwright-core) against the real HTTP server, runtime and worker: a signed-in
 * operator corrects a failed purchase order's input and resolves another's failed step by hand;
 * a signed-in person who is neither requester nor operator, and a viewer who is not signed in,
 * are refused with nothing changed. Screenshots go to test/.artifacts/console/ (ignored by git).
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './helpers/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountConsole, type ConsoleHandle } from '../src/console/index.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { parsePrincipal } from '../src/common/principals.ts';
import { createHttpServer, type HttpServer } from '../src/server/http.ts';
import { builtinWorkflows } from '../src/workflows/index.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { startHttpTarget, type HttpTarget } from './helpers/http-target.ts';
import { testLogger } from './helpers/log.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';

const ARTIFACTS = path.join(import.meta.dirname, '.artifacts', 'console');

const OPS = 'slack:T1:UOPS';
const BOB = 'slack:T1:UBOB';
const REQ = 'slack:T1:UREQ';
const OPS_TOKEN = 'ops-personal-console-token-0101';
const BOB_TOKEN = 'bob-personal-console-token-0202';
const DESK = 'orders@acme.example';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

let db: TestDb;
let t: TestRuntime;
let vendor: HttpTarget;
let server: HttpServer;
let webConsole: ConsoleHandle;
let base: string;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  db = await createTestDb();
  vendor = await startHttpTarget((req) => {
    const body = JSON.parse(req.body) as { vendorContact?: string };
    return body.vendorContact === DESK ? { json: { ok: true } } : { status: 500, text: 'no such order desk' };
  });
  const project = parseProjectConfig({
    operators: [OPS],
    groups: { finance: ['slack:T1:UFIN'] },
    console: { users: { [OPS]: sha256(OPS_TOKEN), [BOB]: sha256(BOB_TOKEN) } },
    workflows: { 'purchase-order': { approvalThreshold: 1000, notifyUrl: `${vendor.url}/orders` } },
  });
  t = await createTestRuntime(db, builtinWorkflows(project), { project });
  const log = testLogger();
  server = createHttpServer({ log, checks: { pool: db.pool } });
  webConsole = mountConsole(server, { config: { host: '127.0.0.1', console: { token: undefined } }, project, runtime: t.runtime, log, liveIntervalMs: 200 });
  base = `http://127.0.0.1:${(await server.listen(0, '127.0.0.1')).port}`;
  browser = await launchChromium();
});
afterAll(async () => {
  await Promise.all(contexts.map((c) => c.close()));
  await browser?.close();
  webConsole?.close();
  await server?.close();
  await t?.stop();
  await vendor?.close();
  await db?.close();
});

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  return context.newPage();
}

async function signedIn(token: string): Promise<Page> {
  const page = await newPage();
  await page.goto(`${base}/console/sign-in`);
  await page.fill('input[name=token]', token);
  await page.click('button:has-text("Sign in")');
  await page.waitForURL(`${base}/console`);
  return page;
}

async function failedOrder(reason: string, extra: Record<string, unknown> = {}) {
  const run = await t.runtime.startRun({
    workflow: 'purchase-order',
    input: { vendor: 'Acme', amount: 120, currency: 'EUR', reason, ...extra },
    requester: parsePrincipal(REQ),
  });
  await waitForRun(t.runtime, run.id, 'failed');
  return run;
}

async function events(runId: string, type: string) {
  return (
    await db.pool.query<{ actor: unknown; payload: Record<string, unknown> }>('SELECT actor, payload FROM tollgate.events WHERE run_id = $1 AND type = $2', [
      runId,
      type,
    ])
  ).rows;
}

describe('console: Edit and retry', () => {
  it('a signed-in operator edits the input in the prefilled form, sees what will run again, and the run resumes at the failed step', async () => {
    const run = await failedOrder('toner', { vendorContact: 'desk@acme.example' });
    const page = await signedIn(OPS_TOKEN);
    await page.goto(`${base}/console/runs/${run.id}`);
    await page.click('[data-testid=edit-and-retry]');
    await page.waitForURL(`${base}/console/runs/${run.id}/edit`);
    expect(await page.inputValue('input[name=vendorContact]')).toBe('desk@acme.example');
    expect(await page.inputValue('input[name=amount]')).toBe('120');

    await page.fill('input[name=amount]', 'lots');
    await page.click('button:has-text("Next")');
    expect(await page.locator('[data-field=amount]').textContent()).toContain('decimal number');
    expect(await events(run.id, 'run.edited')).toEqual([]);

    await page.fill('input[name=amount]', '120');
    await page.fill('input[name=vendorContact]', DESK);
    await page.click('button:has-text("Next")');
    const plan = await page.locator('[data-testid=edit-plan]').textContent();
    expect(plan).toContain('Every completed step is kept');
    expect(plan).toContain('resumes at "notify vendor"');
    await page.screenshot({ path: path.join(ARTIFACTS, 'edit-and-retry-plan.png'), fullPage: true });
    await page.click('button:has-text("Retry with these")');
    await page.waitForURL(`${base}/console/runs/${run.id}?done=edit`);
    await waitForRun(t.runtime, run.id, 'succeeded');
    expect((await events(run.id, 'run.edited'))[0]).toMatchObject({
      actor: { platform: 'slack', tenant: 'T1', user: 'UOPS' },
      payload: { changed: { vendorContact: { from: 'desk@acme.example', to: DESK } }, via: 'console' },
    });
    expect((await events(run.id, 'step.started')).filter((e) => e.payload.step === 'purchase-orders.create')).toHaveLength(1);
  });

  it('is refused to a signed-in reader who is neither requester nor operator, and to a viewer who is not signed in', async () => {
    const run = await failedOrder('staples');
    const bob = await signedIn(BOB_TOKEN);
    const res = await bob.goto(`${base}/console/runs/${run.id}/edit`);
    expect(res?.status()).toBe(403);
    expect(await bob.locator('[data-testid=refusal]').textContent()).toContain('Only the person who started');
    const resolve = await bob.goto(`${base}/console/runs/${run.id}/resolve`);
    expect(resolve?.status()).toBe(403);
    expect(await bob.locator('[data-testid=refusal]').textContent()).toContain('Only an operator can resolve');

    const anonymous = await newPage();
    const open = await anonymous.goto(`${base}/console/runs/${run.id}/edit`);
    expect(open?.status()).toBe(403);
    expect(await anonymous.locator('[data-testid=refusal]').textContent()).toContain('Sign in to edit or resolve');
    expect(await events(run.id, 'run.edited')).toEqual([]);
    expect((await t.runtime.getRun(run.id)).run.status).toBe('failed');
  });
});

describe('console: Resolve by hand', () => {
  it('a signed-in operator marks the failed step done with its output and a reason; the run continues', async () => {
    const run = await failedOrder('labels');
    const page = await signedIn(OPS_TOKEN);
    await page.goto(`${base}/console/runs/${run.id}`);
    await page.click('[data-testid=resolve]');
    await page.waitForURL(`${base}/console/runs/${run.id}/resolve`);
    await page.check('input[name=action][value=by-hand]');
    await page.fill('textarea[name=output]', '{"status": 200, "note": "phoned"}');
    await page.click('button:has-text("Resolve")');
    expect(await page.locator('[data-field=reason]').textContent()).toContain('Say why');
    await page.fill('textarea[name=output]', '{"status": 200, "note": "phoned"}');
    await page.fill('textarea[name=reason]', 'phoned the order desk');
    await page.click('button:has-text("Resolve")');
    await page.waitForURL(`${base}/console/runs/${run.id}?done=resolve`);
    await waitForRun(t.runtime, run.id, 'succeeded');
    expect(await events(run.id, 'step.resolved_by_hand')).toEqual([
      {
        actor: { platform: 'slack', tenant: 'T1', user: 'UOPS' },
        payload: { step: 'notify vendor', output: { status: 200, note: 'phoned' }, reason: 'phoned the order desk', via: 'console' },
      },
    ]);
  });
});
