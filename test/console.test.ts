/**
 * The web console (issue 10, item 3) in a real browser: Debian's Chromium driven by
 * playwright-core, against the real HTTP server, runtime and worker on the test database.
 * Every page is kept as a screenshot in test/.artifacts/console/ (ignored by git: rewritten on every
 * run, so a run leaves the tree clean). No timing assertions: every wait
 * is for a condition on the page or in the database.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './helpers/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startApp } from '../src/app.ts';
import { listRunApprovals } from '../src/approvals/store.ts';
import { evidenceBundleHandler } from '../src/audit/bundle-http.ts';
import { verifyEvidenceBundle } from '../src/audit/bundle-verify.ts';
import { loadConfig } from '../src/config/config.ts';
import { mountConsole, type ConsoleHandle } from '../src/console/index.ts';
import { isTollgateError, NonRetriableError } from '../src/common/errors.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { appendEvent } from '../src/db/queries/events.ts';
import { defineWorkflow } from '../src/runtime/workflow.ts';
import { createHttpServer, type HttpServer } from '../src/server/http.ts';
import { builtinWorkflows } from '../src/workflows/index.ts';
import { parsePrincipal } from '../src/common/principals.ts';
import { createTestDb, TEST_AUDIT_ENV, testAuditKey, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';

const ARTIFACTS = path.join(import.meta.dirname, '.artifacts', 'console');

const OPS = 'slack:T1:UOPS';
const BOB = 'slack:T1:UBOB';
const REQ = 'slack:T1:UREQ';
const FIN = 'slack:T1:UFIN';
const OPS_TOKEN = 'ops-personal-console-token-0001';
const BOB_TOKEN = 'bob-personal-console-token-0002';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const project = parseProjectConfig({
  operators: [OPS],
  groups: { finance: [FIN] },
  console: { users: { [OPS]: sha256(OPS_TOKEN), [BOB]: sha256(BOB_TOKEN) } },
});

/** Runs whose card is fixed: their `charge` step succeeds (a retry after the fix goes through). */
const fixedCards = new Set<string>();
const checkout = defineWorkflow({
  name: 'checkout',
  version: 1,
  description: 'Reserve a cart and charge it.',
  input: z.object({ cart: z.string() }),
  run: async (ctx) => {
    const reserved = await ctx.step('reserve', () => ({ cart: ctx.input.cart, items: 3 }));
    const charged = await ctx.step('charge', () => {
      if (ctx.input.cart === 'declined' && !fixedCards.has(ctx.runId)) {
        throw new NonRetriableError('The payment service refused the card: insufficient funds.');
      }
      return { chargedEur: 42 };
    });
    return { ...reserved, ...charged };
  },
});

let db: TestDb;
let t: TestRuntime;
let server: HttpServer;
let webConsole: ConsoleHandle;
let base: string;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  db = await createTestDb();
  t = await createTestRuntime(db, [checkout, ...builtinWorkflows(project)], { project });
  const log = testLogger();
  server = createHttpServer({ log, checks: { pool: db.pool } });
  const evidence = evidenceBundleHandler({ pool: db.pool, registry: t.registry, auditKey: testAuditKey });
  webConsole = mountConsole(server, {
    config: { host: '127.0.0.1', console: { token: undefined } },
    project,
    runtime: t.runtime,
    log,
    liveIntervalMs: 200,
    evidence,
  });
  const addr = await server.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${addr.port}`;
  browser = await launchChromium();
});

afterAll(async () => {
  await Promise.all(contexts.map((c) => c.close()));
  await browser?.close();
  webConsole?.close();
  await server?.close();
  await t?.stop();
  await db?.close();
});

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  return context.newPage();
}

/** A browser signed in through the console's own sign-in form. */
async function signedIn(token: string): Promise<Page> {
  const page = await newPage();
  await page.goto(`${base}/console/sign-in`);
  await page.fill('input[name=token]', token);
  await page.click('button:has-text("Sign in")');
  await page.waitForURL(`${base}/console`);
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });
}

async function startCheckout(cart: string, requester = REQ) {
  return t.runtime.startRun({ workflow: 'checkout', input: { cart }, requester: parsePrincipal(requester) });
}

async function startOrder(amount: number, vendor: string, requester = REQ) {
  return t.runtime.startRun({
    workflow: 'purchase-order',
    input: { vendor, amount, currency: 'EUR', reason: 'Laptops for the new team' },
    requester: parsePrincipal(requester),
  });
}

/** The events of a run, by type (to prove what a refused click did not write). */
async function eventTypes(runId: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ type: string }>('SELECT type FROM tollgate.events WHERE run_id = $1 ORDER BY id', [runId]);
  return rows.map((r) => r.type);
}

describe('web console in Chromium', () => {
  it('lists runs and filters them by workflow, status and requester', async () => {
    const ok = await startCheckout('books', REQ);
    const other = await startCheckout('games', BOB);
    const order = await startOrder(120, 'Paper Co');
    await Promise.all([waitForRun(t.runtime, ok.id, 'succeeded'), waitForRun(t.runtime, other.id, 'succeeded'), waitForRun(t.runtime, order.id, 'succeeded')]);

    const page = await newPage();
    await page.goto(`${base}/console`);
    for (const id of [ok.id, other.id, order.id]) await page.locator(`tr[data-run-id="${id}"]`).waitFor();
    await shot(page, 'runs.png');

    // The plain GET form: workflow checkout, status succeeded, requester REQ.
    await page.selectOption('select[name=workflow]', 'checkout');
    await page.selectOption('select[name=status]', 'succeeded');
    await page.fill('input[name=requester]', REQ);
    await page.click('button:has-text("Filter")');
    await page.waitForURL(/requester=/);
    await page.locator(`tr[data-run-id="${ok.id}"]`).waitFor();
    expect(await page.locator(`tr[data-run-id="${other.id}"]`).count()).toBe(0); // Bob's
    expect(await page.locator(`tr[data-run-id="${order.id}"]`).count()).toBe(0); // another workflow
    expect(await page.inputValue('input[name=requester]')).toBe(REQ); // the form keeps what was asked

    // A requester that is not a principal is named, not silently ignored.
    await page.goto(`${base}/console?requester=bob`);
    expect(await page.locator('[role=alert]').textContent()).toContain('"bob" is not a principal');
  });

  it("shows a failed run's timeline with its error", async () => {
    const run = await startCheckout('declined');
    await waitForRun(t.runtime, run.id, 'failed');
    const page = await newPage();
    await page.goto(`${base}/console/runs/${run.id}`);
    const error = await page.locator('[data-testid=run-error]').textContent();
    expect(error).toContain('Step "charge" failed');
    expect(error).toContain('insufficient funds');
    expect(await page.locator('tr[data-step="charge"]').getAttribute('data-step-status')).toBe('failed');
    expect(await page.locator('tr[data-step="reserve"]').getAttribute('data-step-status')).toBe('succeeded');
    await page.locator('tr[data-step="reserve"] summary:has-text("output")').click(); // recorded output, without JavaScript
    expect(await page.locator('tr[data-step="reserve"] pre').last().textContent()).toContain('"items": 3');
    expect(await page.locator('[data-testid=export-evidence]').getAttribute('href')).toBe(`/console/runs/${run.id}/evidence`);
    await shot(page, 'failed-run.png');
  });

  it('shows a pending approval with the exact parameters and their hash', async () => {
    const run = await startOrder(5000, 'ACME Tools');
    await waitForRun(t.runtime, run.id, 'waiting');
    const [approval] = await listRunApprovals(db.pool, run.id);
    if (!approval) throw new Error('the order asked for no approval');

    const page = await newPage();
    await page.goto(`${base}/console/approvals`);
    const card = page.locator(`[data-approval-id="${approval.id}"]`);
    await card.waitFor();
    const params = await card.locator('[data-testid=params]').textContent();
    expect(params).toContain('ACME Tools');
    expect(params).toContain('5000');
    expect(params).toContain('Laptops for the new team');
    expect(await card.locator('[data-testid=params-hash]').textContent()).toBe(approval.paramsHash);
    expect(await card.textContent()).toContain('group finance');
    await shot(page, 'approvals.png');
  });

  it('Retry by an operator resumes the run until it succeeds; a non-operator is refused and nothing changes', async () => {
    const run = await startCheckout('declined');
    await waitForRun(t.runtime, run.id, 'failed');

    // Bob is signed in, but neither the requester nor an operator: the runtime refuses.
    const bob = await signedIn(BOB_TOKEN);
    await bob.goto(`${base}/console/runs/${run.id}`);
    await bob.click('button:has-text("Retry")');
    const refusal = await bob.locator('[data-testid=refusal]').textContent();
    expect(refusal).toContain(`Only the person who started run ${run.id} or an operator can retry it; ${BOB} is neither, so nothing was changed.`);
    expect((await t.runtime.getRun(run.id)).run.status).toBe('failed');
    expect(await eventTypes(run.id)).not.toContain('run.retried');

    // The operator retries once the card is fixed; the open page follows the run to its end.
    fixedCards.add(run.id);
    const ops = await signedIn(OPS_TOKEN);
    await ops.goto(`${base}/console/runs/${run.id}`);
    expect(await ops.locator('[data-testid=who]').textContent()).toContain(`${OPS} (operator)`);
    await ops.click('button:has-text("Retry")');
    await ops.locator('[data-testid=notice]').waitFor();
    await ops.locator('[data-testid=run-status] [data-status=succeeded]').waitFor();
    const done = await t.runtime.getRun(run.id);
    expect(done.run.status).toBe('succeeded');
    expect(done.run.output).toEqual({ cart: 'declined', items: 3, chargedEur: 42 });
    const retried = done.events.find((e) => e.type === 'run.retried');
    expect(retried?.actor).toMatchObject(parsePrincipal(OPS));
    expect(retried?.payload).toMatchObject({ via: 'console' });
  });

  it('updates an open run page live as the run moves on, without a reload', async () => {
    const run = await startOrder(4200, 'Northwind');
    await waitForRun(t.runtime, run.id, 'waiting');
    const page = await newPage();
    await page.goto(`${base}/console/runs/${run.id}`);
    // A mark on this document: a reload would lose it (the browser's globalThis is the window).
    await page.evaluate(() => {
      (globalThis as unknown as { loadedOnce: string }).loadedOnce = 'still the same page';
    });
    await page.locator('[data-testid=run-status] [data-status=waiting]').waitFor();
    expect(await page.locator('tr[data-step^="purchase-orders.create"]').count()).toBe(0);

    // A model call recorded by the model layer (its event), then the approver decides in chat.
    await appendEvent(db.pool, {
      runId: run.id,
      type: 'model.called',
      stepIdx: 0,
      payload: {
        model: 'gpt-4o-mini',
        prompt: { name: 'po-risk-summary', version: '3' },
        inputTokens: 812,
        outputTokens: 64,
        costUsd: 0.00016,
        latencyMs: 740,
      },
    });
    await page.locator('[data-testid=model-calls] td:has-text("po-risk-summary@3")').waitFor();
    const [approval] = await listRunApprovals(db.pool, run.id);
    await t.runtime.decide(approval?.id as string, FIN, 'approve', 'Budgeted in Q4', { via: 'slack' });

    await page.locator('tr[data-step^="purchase-orders.create"][data-step-status=succeeded]').waitFor();
    await page.locator('[data-testid=run-status] [data-status=succeeded]').waitFor();
    expect(await page.evaluate(() => (globalThis as unknown as { loadedOnce?: string }).loadedOnce)).toBe('still the same page');
    const decisions = await page.locator('[data-testid=decisions]').textContent();
    expect(decisions).toContain(FIN);
    expect(decisions).toContain('Budgeted in Q4');
    expect(await page.locator('[data-testid=tool-calls]').textContent()).toContain('Northwind');
    expect(await page.locator('[data-testid=model-cost]').textContent()).toBe('$0.000160');
    await shot(page, 'run-timeline.png');
  });

  it('verifies the audit chain on request', async () => {
    const page = await newPage();
    await page.goto(`${base}/console/audit`);
    expect(await page.locator('[data-testid=audit-status]').textContent()).toContain('Not verified since this process started');
    await page.click('button:has-text("Verify now")');
    await page.locator('[data-testid=audit-status] [data-status=ok]').waitFor();
    await shot(page, 'audit.png');
  });
});

describe('web console without JavaScript', () => {
  it('serves every page as plain HTML that holds the data', async () => {
    const failed = await startCheckout('declined');
    const pending = await startOrder(7777, 'Plain HTML Ltd');
    await Promise.all([waitForRun(t.runtime, failed.id, 'failed'), waitForRun(t.runtime, pending.id, 'waiting')]);
    const [approval] = await listRunApprovals(db.pool, pending.id);

    const list = await fetch(`${base}/console?workflow=checkout&status=failed`);
    expect(list.status).toBe(200);
    expect(list.headers.get('content-type')).toContain('text/html');
    const listHtml = await list.text();
    expect(listHtml).toContain(`data-run-id="${failed.id}"`);
    expect(listHtml).not.toContain(`data-run-id="${pending.id}"`);

    const runHtml = await (await fetch(`${base}/console/runs/${failed.id}`)).text();
    expect(runHtml).toContain('The payment service refused the card: insufficient funds.');
    expect(runHtml).toContain(`<form method="post" action="/console/runs/${failed.id}/retry">`);

    const approvalsHtml = await (await fetch(`${base}/console/approvals`)).text();
    expect(approvalsHtml).toContain('Plain HTML Ltd');
    expect(approvalsHtml).toContain(approval?.paramsHash as string);

    expect(await (await fetch(`${base}/console/audit`)).text()).toContain('Verify now');
    const missing = await fetch(`${base}/console/runs/run_nope`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain('No run with id &quot;run_nope&quot;.');
    expect((await fetch(`${base}/console/runs/${failed.id}`, { method: 'DELETE' })).status).toBe(405);
  });

  it('pages the runs list: Older runs goes on from the last run shown, keeps the filters, and a page stays put while new runs arrive', async () => {
    // A console of its own with pages of 2, on the same runtime and database.
    const paged = createHttpServer({ log: testLogger(), checks: { pool: db.pool } });
    const pagedConsole = mountConsole(paged, {
      config: { host: '127.0.0.1', console: { token: undefined } },
      project,
      runtime: t.runtime,
      log: testLogger(),
      pageSize: 2,
    });
    const pagedBase = `http://127.0.0.1:${(await paged.listen(0, '127.0.0.1')).port}`;
    try {
      const PAGER = 'slack:T1:UPAGER';
      const started = [];
      for (const cart of ['p1', 'p2', 'p3', 'p4', 'p5']) started.push(await startCheckout(cart, PAGER));
      await Promise.all(started.map((r) => waitForRun(t.runtime, r.id, 'succeeded')));
      await startCheckout('someone-else', BOB); // filtered out on every page

      const listed = (page: string) => [...page.matchAll(/data-run-id="([^"]+)"/g)].map((m) => m[1] as string);
      const olderLink = (page: string) => /<a href="([^"]+)" rel="next"/.exec(page)?.[1]?.replaceAll('&amp;', '&');
      const pages: string[][] = [];
      const hrefs: string[] = [];
      let href: string | undefined = `/console?workflow=checkout&requester=${encodeURIComponent(PAGER)}`;
      while (href && pages.length < 10) {
        hrefs.push(href);
        const res = await fetch(`${pagedBase}${href}`);
        expect(res.status).toBe(200);
        const body = await res.text();
        pages.push(listed(body));
        href = olderLink(body);
        if (href) expect(new URL(href, pagedBase).searchParams.get('requester')).toBe(PAGER); // the filters go along
      }
      // Newest first, each run exactly once, on pages of 2; the last page has no Older runs link.
      expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
      expect(pages.flat()).toEqual(started.map((r) => r.id).reverse());

      // A new run shows on the first page; the second page still lists the same two runs.
      const newer = await startCheckout('p6', PAGER);
      await waitForRun(t.runtime, newer.id, 'succeeded');
      expect(listed(await (await fetch(`${pagedBase}${hrefs[1]}`)).text())).toEqual(pages[1]);
      expect(listed(await (await fetch(`${pagedBase}${hrefs[0]}`)).text())[0]).toBe(newer.id);
    } finally {
      pagedConsole.close();
      await paged.close();
    }
  });

  it("downloads a run's evidence bundle from its page's Export evidence link, and the bundle verifies", async () => {
    const pending = await startOrder(3100, 'Evidence GmbH');
    await waitForRun(t.runtime, pending.id, 'waiting');
    const runHtml = await (await fetch(`${base}/console/runs/${pending.id}`)).text();
    const href = /href="([^"]+)" data-testid="export-evidence"/.exec(runHtml)?.[1];
    expect(href).toBe(`/console/runs/${pending.id}/evidence`);
    const download = await fetch(`${base}${href}`);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-disposition')).toBe(`attachment; filename="${pending.id}.evidence.json"`);
    const bundle = (await download.json()) as { run: { id: string }; approvals: { params: Record<string, unknown> }[] };
    expect(bundle.run.id).toBe(pending.id);
    expect(bundle.approvals[0]?.params).toMatchObject({ vendor: 'Evidence GmbH', amount: 3100 });
    expect(verifyEvidenceBundle(bundle, { auditKey: testAuditKey }).ok).toBe(true);
  });

  it('escapes what runs carry', async () => {
    const run = await startCheckout('<script>alert(1)</script>');
    await waitForRun(t.runtime, run.id, 'succeeded');
    const body = await (await fetch(`${base}/console/runs/${run.id}`)).text();
    expect(body).not.toContain('<script>alert(1)</script>');
    expect(body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('refuses Retry without a signed-in person, and forms from another origin', async () => {
    const run = await startCheckout('declined');
    await waitForRun(t.runtime, run.id, 'failed');
    // A form of the console's own page, with that browser's CSRF token (its anonymous cookie's).
    const shown = await fetch(`${base}/console/runs/${run.id}`);
    const anonCookie = /^[^;]+/.exec(shown.headers.get('set-cookie') ?? '')?.[0] ?? '';
    const csrf = /name="csrf" value="([^"]+)"/.exec(await shown.text())?.[1] ?? '';
    const anonymous = await fetch(`${base}/console/runs/${run.id}/retry`, {
      method: 'POST',
      headers: { origin: base, cookie: anonCookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf }).toString(),
      redirect: 'manual',
    });
    expect(anonymous.status).toBe(403);
    expect(await anonymous.text()).toContain('without a signed-in person the console is read-only. Nothing was changed.');
    // The same form without the token is refused before anything else.
    const noToken = await fetch(`${base}/console/runs/${run.id}/retry`, { method: 'POST', headers: { origin: base, cookie: anonCookie }, redirect: 'manual' });
    expect(noToken.status).toBe(403);
    expect(await noToken.text()).toContain('This form did not carry the token of your session');

    const forged = await fetch(`${base}/console/runs/${run.id}/retry`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', authorization: `Bearer ${OPS_TOKEN}` },
      redirect: 'manual',
    });
    expect(forged.status).toBe(403);
    expect((await t.runtime.getRun(run.id)).run.status).toBe('failed');
    expect(await eventTypes(run.id)).not.toContain('run.retried');
  });

  it('answers only requests addressed to a loopback name on a loopback bind', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL(`${base}/console`);
      http
        .get({ host: u.hostname, port: u.port, path: '/console', headers: { host: `rebound.example:${u.port}` } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on('error', reject);
    });
    expect(status).toBe(403);
  });
});

describe('binding beyond this machine', () => {
  const env = (extra: Record<string, string>) =>
    loadConfig({ ...TEST_AUDIT_ENV, DATABASE_URL: db.url, LOG_LEVEL: 'silent', PORT: '0', TOLLGATE_DATA_DIR: '/nonexistent-tollgate-console-test', ...extra });

  it('refuses to start without TOLLGATE_CONSOLE_TOKEN, naming it', async () => {
    const e = await startApp({ config: env({ HOST: '0.0.0.0' }), log: testLogger(), mode: 'server' }).then(
      async (app) => {
        await app.stop();
        return new Error('the server started');
      },
      (err: unknown) => err as Error,
    );
    expect(isTollgateError(e) && e.code).toBe('TG_CONFIG_INVALID');
    expect(e.message).toContain('HOST=0.0.0.0 serves the web console (/console) beyond this machine, so it needs TOLLGATE_CONSOLE_TOKEN');
  });

  it('with the token, starts and lets in only requests that bring it', async () => {
    const token = 'a-console-token-of-enough-length';
    const app = await startApp({ config: env({ HOST: '0.0.0.0', TOLLGATE_CONSOLE_TOKEN: token }), log: testLogger(), mode: 'server' });
    try {
      const url = `http://127.0.0.1:${new URL(app.url as string).port}/console`;
      expect((await fetch(url)).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: 'Bearer not-the-token-at-all' } })).status).toBe(401);
      const ok = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('Console token, read-only');
    } finally {
      await app.stop();
    }
  });
});
