/**
 * Signing in to the web console through OpenID Connect (issue 22, items 1 and 3), against a real
 * OpenID provider run here (oidc-provider 8, test/fakes/oidc), with Slack-shaped and
 * Microsoft-shaped ID tokens: the same tests run for both. In Chromium (Debian's, through
 * playwright-core) a person signs in and sees the console as the principal chat knows them by;
 * over plain HTTP (test/fakes/oidc/http-browser.ts) every refusal is shown one by one: a tenant not
 * listed, a replayed state, a tampered ID token, an ended session, a form without its CSRF token.
 * The console token is set, so a signed-out or ended session reads nothing.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from './helpers/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startApp } from '../src/app.ts';
import { NonRetriableError } from '../src/common/errors.ts';
import { loadConfig } from '../src/config/config.ts';
import { parsePrincipal } from '../src/common/principals.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { mountConsole, type ConsoleHandle } from '../src/console/index.ts';
import { defineWorkflow } from '../src/runtime/workflow.ts';
import { createHttpServer, type HttpServer } from '../src/server/http.ts';
import { HttpBrowser } from './fakes/oidc/http-browser.ts';
import { principalOf, startFakeOidc, type ClaimShape, type FakeOidc, type FakePerson } from './fakes/oidc/provider.ts';
import { inProcessCli } from './helpers/cli.ts';
import { createTestDb, TEST_AUDIT_ENV, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';

const ARTIFACTS = path.join(import.meta.dirname, '.artifacts', 'console');
const CONSOLE_TOKEN = 'console-token-for-the-oidc-tests-0001';
const CALLBACK = '/console/sign-in/oidc/callback';
const SLACK_TEAM = 'T0ALLOWED';
const MS_TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

const PEOPLE: Record<ClaimShape, { ok: FakePerson; outsider: FakePerson }> = {
  slack: {
    ok: { shape: 'slack', tenant: SLACK_TEAM, user: 'U0ADA', name: 'Ada Lovelace' },
    outsider: { shape: 'slack', tenant: 'T0OTHER', user: 'U0EVE', name: 'Eve Outsider' },
  },
  microsoft: {
    ok: { shape: 'microsoft', tenant: MS_TENANT, user: '00000000-0000-0000-0000-00000000ada1', name: 'Ada Lovelace' },
    outsider: { shape: 'microsoft', tenant: 'f00dbabe-0000-4000-8000-000000000000', user: '00000000-0000-0000-0000-0000000000e5', name: 'Eve Outsider' },
  },
};

/** Runs whose card is fixed: their `charge` step succeeds (a retry after the fix goes through). */
const fixed = new Set<string>();
const checkout = defineWorkflow({
  name: 'checkout',
  version: 1,
  description: 'Charge a cart.',
  input: z.object({ cart: z.string() }),
  run: async (ctx) =>
    ctx.step('charge', () => {
      if (!fixed.has(ctx.runId)) throw new NonRetriableError('The payment service refused the card.');
      return { charged: true };
    }),
});

let db: TestDb;
let t: TestRuntime;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  db = await createTestDb();
  t = await createTestRuntime(db, [checkout]);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await t?.stop();
  await db?.close();
});

async function sessionRows(principal: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tollgate.console_sessions WHERE principal = $1', [principal]);
  return rows[0]?.n ?? 0;
}

async function eventTypes(runId: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ type: string }>('SELECT type FROM tollgate.events WHERE run_id = $1 ORDER BY id', [runId]);
  return rows.map((r) => r.type);
}

describe.each(['slack', 'microsoft'] as const)('console sign-in with %s-shaped OpenID Connect', (shape) => {
  const { ok: ada, outsider } = PEOPLE[shape];
  const ADA = principalOf(ada);
  let server: HttpServer;
  let webConsole: ConsoleHandle;
  let fake: FakeOidc;
  let base: string;

  beforeAll(async () => {
    server = createHttpServer({ log: testLogger(), checks: { pool: db.pool } });
    base = `http://127.0.0.1:${(await server.listen(0, '127.0.0.1')).port}`;
    fake = await startFakeOidc({ redirectUris: [`${base}${CALLBACK}`] });
    // The issuer and client from the environment's settings, the principal rule from the project.
    const project = parseProjectConfig({ tenants: [SLACK_TEAM, MS_TENANT], console: { oidc: { principal: shape === 'slack' ? 'slack' : 'microsoft' } } });
    webConsole = mountConsole(server, {
      config: {
        host: '127.0.0.1',
        console: {
          token: CONSOLE_TOKEN,
          publicUrl: base,
          oidc: { issuer: fake.issuer, clientId: fake.clientId, clientSecret: fake.clientSecret },
          sessionIdleMs: 8 * 3_600_000,
          sessionMaxMs: 7 * 24 * 3_600_000,
        },
      },
      project,
      runtime: t.runtime,
      log: testLogger(),
    });
  });

  afterAll(async () => {
    webConsole?.close();
    await server?.close();
    await fake?.close();
  });

  /** Signs in over HTTP and returns the browser, its cookies holding the session. */
  async function signedIn(person: FakePerson): Promise<HttpBrowser> {
    fake.signInAs(person);
    const b = new HttpBrowser();
    const { res, url } = await b.follow(`${base}/console/sign-in/oidc`);
    expect(url).toBe(`${base}/console`);
    expect(res?.status).toBe(200);
    return b;
  }

  it('signs in in Chromium and shows the console as the principal chat knows; the cookie is HttpOnly and SameSite=Lax; sign-out ends it', async () => {
    fake.signInAs(ada);
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${base}/console`); // signed out: the console token is set, so nothing is read
      await page.screenshot({ path: path.join(ARTIFACTS, `oidc-sign-in-${shape}.png`), fullPage: true });
      await page.click('[data-testid=oidc-sign-in]');
      await page.waitForURL(`${base}/console`);
      // Shown by the name the provider gave, with the principal chat knows as the identity.
      expect(await page.locator('[data-testid=who] [data-principal]').getAttribute('data-principal')).toBe(ADA);
      expect(await page.locator('[data-testid=who]').textContent()).toContain('Ada Lovelace');
      await page.screenshot({ path: path.join(ARTIFACTS, `oidc-signed-in-${shape}.png`), fullPage: true });
      const cookie = (await context.cookies(`${base}/console`)).find((c) => c.name === 'tollgate_console_session');
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/console' });
      expect(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie)).not.toContain('tollgate_console_session');
      expect(await sessionRows(ADA)).toBeGreaterThan(0);

      const before = await sessionRows(ADA);
      await page.click('button:has-text("Sign out")'); // a form with the session's CSRF token
      await page.waitForURL(`${base}/console`);
      expect(await page.locator('h1').textContent()).toBe('Sign in');
      expect(await sessionRows(ADA)).toBe(before - 1);
    } finally {
      await context.close();
    }
  });

  it('GET /console/sign-in/oidc answers 302 to the authorization endpoint with exactly the contract parameters', async () => {
    const res = await fetch(`${base}/console/sign-in/oidc`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const to = new URL(res.headers.get('location') ?? '');
    const discovered = (await (await fetch(`${fake.issuer}/.well-known/openid-configuration`)).json()) as { authorization_endpoint: string };
    expect(`${to.origin}${to.pathname}`).toBe(discovered.authorization_endpoint);
    const q = Object.fromEntries(to.searchParams);
    expect(Object.keys(q).sort()).toEqual(['client_id', 'code_challenge', 'code_challenge_method', 'nonce', 'redirect_uri', 'response_type', 'scope', 'state']);
    expect(q).toMatchObject({
      response_type: 'code',
      client_id: fake.clientId,
      redirect_uri: `${base}${CALLBACK}`,
      code_challenge_method: 'S256',
      scope: 'openid profile email',
    });
    expect(q.code_challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.state?.length).toBeGreaterThanOrEqual(32);
    expect(q.nonce?.length).toBeGreaterThanOrEqual(32);
    expect(res.headers.get('set-cookie')).toMatch(/^tollgate_oidc=[^;]+; Path=\/console\/sign-in\/oidc; HttpOnly; SameSite=Lax/);
  });

  it('refuses a sign-in from a workspace or tenant not on the tenants list, with a page that says why', async () => {
    fake.signInAs(outsider);
    const b = new HttpBrowser();
    const { res } = await b.follow(`${base}/console/sign-in/oidc`);
    expect(res?.status).toBe(403);
    const page = await res!.text();
    expect(page).toContain(
      `You signed in as ${principalOf(outsider)}, but this Tollgate serves only the workspaces and tenants its configuration lists (tenants), and ${outsider.tenant} is not among them.`,
    );
    expect(await sessionRows(principalOf(outsider))).toBe(0);
    expect((await b.request(`${base}/console`)).status).toBe(401);
  });

  it('refuses a replayed state: the callback works once', async () => {
    fake.signInAs(ada);
    const b = new HttpBrowser();
    const { stoppedAt } = await b.follow(`${base}/console/sign-in/oidc`, (u) => u.pathname === CALLBACK);
    const callback = stoppedAt as string;
    const browserCookie = b.cookies.get('tollgate_oidc') as string;
    const first = await b.request(callback);
    expect(first.status).toBe(303);
    const sessions = await sessionRows(ADA);

    // The same answer again, from the same browser (its sign-in cookie put back).
    const replayer = new HttpBrowser();
    replayer.cookies.set('tollgate_oidc', browserCookie);
    const again = await replayer.request(callback);
    expect(again.status).toBe(400);
    expect(await again.text()).toContain('This sign-in answer was already used, or does not belong to a sign-in started here (its state is unknown)');
    expect(await sessionRows(ADA)).toBe(sessions);
    expect(replayer.cookies.has('tollgate_console_session')).toBe(false);
  });

  it('refuses a callback brought to another browser than the one that started the sign-in (a forced sign-in)', async () => {
    fake.signInAs(
      shape === 'slack' ? { ...ada, user: 'U0MALLORY', name: 'Mallory' } : { ...ada, user: '00000000-0000-0000-0000-00000000ba11', name: 'Mallory' },
    );
    const mallory = new HttpBrowser();
    const { stoppedAt } = await mallory.follow(`${base}/console/sign-in/oidc`, (u) => u.pathname === CALLBACK);
    const victim = new HttpBrowser();
    const res = await victim.request(stoppedAt as string);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('This sign-in was started in another browser');
    expect(victim.cookies.has('tollgate_console_session')).toBe(false);
  });

  it("refuses an ID token whose signature was tampered with on the way from the provider's token endpoint", async () => {
    fake.signInAs(ada);
    const sessions = await sessionRows(ADA);
    fake.tamperIdTokens = true;
    try {
      const b = new HttpBrowser();
      const { res } = await b.follow(`${base}/console/sign-in/oidc`);
      expect(res?.status).toBe(403);
      expect(await res!.text()).toContain('answer did not verify, so you were not signed in');
      expect(b.cookies.has('tollgate_console_session')).toBe(false);
    } finally {
      fake.tamperIdTokens = false;
    }
    expect(await sessionRows(ADA)).toBe(sessions);
  });

  it('an idle or expired session reads nothing and decides nothing', async () => {
    const run = await t.runtime.startRun({ workflow: 'checkout', input: { cart: 'idle' }, requester: parsePrincipal(ADA) });
    await waitForRun(t.runtime, run.id, 'failed');
    fixed.add(run.id);
    for (const end of ["last_seen_at = now() - interval '9 hours'", "expires_at = now() - interval '1 second'"]) {
      const b = await signedIn(ada);
      const page = await (await b.request(`${base}/console/runs/${run.id}`)).text();
      const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1];
      expect(csrf).toBeDefined();
      const { rows } = await db.pool.query<{ id: string }>(`SELECT id FROM tollgate.console_sessions WHERE principal = $1 ORDER BY created_at DESC LIMIT 1`, [
        ADA,
      ]);
      await db.pool.query(`UPDATE tollgate.console_sessions SET ${end} WHERE id = $1`, [rows[0]?.id]);

      const read = await b.request(`${base}/console/runs/${run.id}`);
      expect(read.status).toBe(401);
      expect(await read.text()).toContain('Your session has ended');
      const retry = await b.request(`${base}/console/runs/${run.id}/retry`, {
        method: 'POST',
        headers: { origin: base, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf: csrf as string }).toString(),
      });
      expect(retry.status).toBe(403); // the page's token belonged to the session that ended
      expect(await eventTypes(run.id)).not.toContain('run.retried');
    }
  });

  it('refuses a POST without the CSRF token of the session; with it, the same POST goes through', async () => {
    const run = await t.runtime.startRun({ workflow: 'checkout', input: { cart: 'csrf' }, requester: parsePrincipal(ADA) });
    await waitForRun(t.runtime, run.id, 'failed');
    fixed.add(run.id);
    const b = await signedIn(ada);
    const post = (body: Record<string, string>) =>
      b.request(`${base}/console/runs/${run.id}/retry`, {
        method: 'POST',
        headers: { origin: base, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(body).toString(),
      });

    const without = await post({});
    expect(without.status).toBe(403);
    expect(await without.text()).toContain('This form did not carry the token of your session');
    const wrong = await post({ csrf: 'x'.repeat(43) });
    expect(wrong.status).toBe(403);
    expect(await eventTypes(run.id)).not.toContain('run.retried');

    const page = await (await b.request(`${base}/console/runs/${run.id}`)).text();
    const csrf = /<form method="post" action="\/console\/runs\/[^"]+\/retry"><input type="hidden" name="csrf" value="([^"]+)">/.exec(page)?.[1];
    const withToken = await post({ csrf: csrf as string });
    expect(withToken.status).toBe(303);
    await waitForRun(t.runtime, run.id, 'succeeded');
    const retried = (await t.runtime.getRun(run.id)).events.find((e) => e.type === 'run.retried');
    expect(retried?.actor).toMatchObject(parsePrincipal(ADA));
  });

  it('tollgate console sessions list shows the live sessions; revoke ends one, and its browser is signed out', async () => {
    const b = await signedIn(ada);
    const cli = inProcessCli(() => db);
    const listed = await cli('console', 'sessions', 'list', '--json');
    expect(listed.code).toBe(0);
    const sessions = JSON.parse(listed.out) as { id: string; principal: string; name: string }[];
    const mine = sessions.filter((s) => s.principal === ADA);
    expect(mine.length).toBeGreaterThan(0);
    expect(mine[0]?.name).toBe(ada.name);
    expect(listed.out).not.toContain(b.cookies.get('tollgate_console_session') as string); // never the secret

    const text = await cli('console', 'sessions', 'list');
    expect(text.out).toMatch(/^ID\s+PRINCIPAL\s+NAME\s+SIGNED IN\s+LAST SEEN\s+ENDS/);
    expect(text.out).toContain(ADA);

    // Revoke every session of Ada's; then this browser reads nothing.
    for (const s of mine) {
      const revoked = await cli('console', 'sessions', 'revoke', s.id);
      expect(revoked.code).toBe(0);
      expect(revoked.out).toContain(`Revoked ${s.id} (${ADA}`);
    }
    expect((await b.request(`${base}/console`)).status).toBe(401);
    const again = await cli('console', 'sessions', 'revoke', mine[0]?.id as string);
    expect(again.code).toBe(1);
    expect(again.err).toContain('No console session');
  });
});

describe('the sign-in as tollgate start wires it', () => {
  it('reads the issuer and client from TOLLGATE_OIDC_*, the principal from the project file, and builds the redirect URI on TOLLGATE_PUBLIC_URL', async () => {
    const publicUrl = 'https://tollgate.example.com';
    const fake = await startFakeOidc({ redirectUris: [`${publicUrl}${CALLBACK}`] });
    const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-oidc-'));
    const projectFile = path.join(dir, 'tollgate.json');
    writeFileSync(projectFile, JSON.stringify({ console: { oidc: { principal: 'slack' } }, tenants: [SLACK_TEAM] }));
    const config = loadConfig({
      ...TEST_AUDIT_ENV,
      DATABASE_URL: db.url,
      LOG_LEVEL: 'silent',
      PORT: '0',
      TOLLGATE_DATA_DIR: '/nonexistent-tollgate-oidc-test',
      TOLLGATE_CONFIG: projectFile,
      TOLLGATE_PUBLIC_URL: publicUrl,
      TOLLGATE_OIDC_ISSUER: fake.issuer,
      TOLLGATE_OIDC_CLIENT_ID: fake.clientId,
      TOLLGATE_OIDC_CLIENT_SECRET: fake.clientSecret,
    });
    const app = await startApp({ config, log: testLogger(), mode: 'server' });
    try {
      const res = await fetch(`http://127.0.0.1:${new URL(app.url as string).port}/console/sign-in/oidc`, { redirect: 'manual' });
      expect(res.status).toBe(302);
      expect(new URL(res.headers.get('location') ?? '').searchParams.get('redirect_uri')).toBe(`${publicUrl}${CALLBACK}`);
      expect(res.headers.get('set-cookie')).toContain('; Secure'); // the public URL is https
    } finally {
      await app.stop();
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
