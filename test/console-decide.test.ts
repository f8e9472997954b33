/**
 * Deciding in the web console, and people by name (issue 22, items 2 and 5), in Debian's Chromium
 * driven by playwright-core, against the real HTTP server with the Slack and Teams adapters, the
 * chat layer, a real worker delivering the outbox, and the fakes of Slack's Web API and of Teams.
 *
 * A person signs in with a personal token (`console.users`), finds the approval on "My approvals",
 * approves it there: the decision goes through the chat layer like a click (`via: console`), the
 * run resumes, and every Slack copy of the approval is updated through chat.update. A Reject
 * without a reason is refused in the form and by the server; a person the policy does not allow
 * sees no buttons and is refused. People show by name with their platform: Slack's users.info,
 * Teams' from.name, and a sign-in's profile (`rememberName`), in the console, a Teams tally and the
 * CLI. Screenshots go to test/.artifacts/console-decide/ (ignored by git).
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './helpers/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { REJECT_REASON_REQUIRED } from '../src/chat/sentences.ts';
import { parsePrincipal } from '../src/common/principals.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { mountConsole, type ConsoleHandle } from '../src/console/index.ts';
import type { RunRow } from '../src/db/queries/runs.ts';
import { defineWorkflow } from '../src/runtime/workflow.ts';
import { purchaseOrderWorkflow } from '../src/workflows/purchase-order.ts';
import { slashCommand } from './fakes/slack/requests.ts';
import type { FakeMessage } from './fakes/slack/server.ts';
import { inProcessCli } from './helpers/cli.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { poll } from './helpers/poll.ts';
import { waitForRun } from './helpers/runtime.ts';
import { blocksText, startSlackHarness, type SlackHarness } from './helpers/slack.ts';

const ARTIFACTS = path.join(import.meta.dirname, '.artifacts', 'console-decide');

const TEAM = 'T1';
const TENANT = 'tenant-contoso';
const ALICE = 'UALICE01'; // requests, in Slack
const FIN1 = 'UFIN0001'; // an approver, decides in the console
const FIN2 = 'UFIN0002'; // an approver, watches the console
const BOB = 'UBOB0001'; // signed in, not an approver
const TESS = { id: '29:tess', aadObjectId: 'aad-tess', name: 'Tess Teams' }; // a Teams approver
const slack = (u: string) => `slack:${TEAM}:${u}`;
const TESS_PRINCIPAL = `teams:${TENANT}:${TESS.aadObjectId}`;
const TOKENS = { [FIN1]: 'fin1-personal-console-token-0001', [FIN2]: 'fin2-personal-console-token-0002', [BOB]: 'bob-personal-console-token-0003' };
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const project = parseProjectConfig({
  groups: { finance: [slack(FIN1), slack(FIN2)] },
  workflows: { 'purchase-order': { approvalThreshold: 1000 } },
  console: { users: Object.fromEntries(Object.entries(TOKENS).map(([u, t]) => [slack(u), sha256(t)])) },
});

/** Two approvals needed, one of them a Teams person's. */
const mixed = defineWorkflow({
  name: 'mixed-sign-off',
  version: 1,
  description: 'A Teams and a Slack approver must both agree',
  input: z.object({}),
  run: async (ctx) => {
    const gate = await ctx.approval('sign-off', {
      policy: { approvers: [TESS_PRINCIPAL, slack(FIN1)], quorum: 'all' },
      summary: 'Sign off the vendor',
      params: { vendor: 'Globex' },
    });
    return gate.status;
  },
});

let db: TestDb;
let h: SlackHarness;
let webConsole: ConsoleHandle;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  db = await createTestDb();
  h = await startSlackHarness(db, [purchaseOrderWorkflow(project), mixed], { project, teams: true });
  // The console on the same server, deciding through the same chat layer the adapters use.
  webConsole = mountConsole(h.http, {
    config: { host: '127.0.0.1', console: { token: undefined } },
    project,
    runtime: h.runtime,
    log: testLogger(),
    liveIntervalMs: 200,
    chat: h.chat.core,
  });
  browser = await launchChromium();
});

afterAll(async () => {
  await Promise.all(contexts.map((c) => c.close()));
  await browser?.close();
  webConsole?.close();
  await h?.stop();
  await db?.close();
});

async function signedIn(user: keyof typeof TOKENS): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  await page.goto(`${h.url}/console/sign-in`);
  await page.fill('input[name=token]', TOKENS[user]);
  await page.click('button:has-text("Sign in")');
  await page.waitForURL(`${h.url}/console`);
  return page;
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });

async function decisions(approvalId: string): Promise<{ principal: string; decision: string; via: string | null; display_name: string | null }[]> {
  const { rows } = await db.pool.query<{ principal: string; decision: string; via: string | null; display_name: string | null }>(
    'SELECT principal, decision, via, display_name FROM tollgate.approval_decisions WHERE approval_id = $1 ORDER BY decided_at',
    [approvalId],
  );
  return rows;
}

/** A POST from the signed-in page itself (its cookie, its Origin), bypassing the form's own checks. */
async function postFrom(page: Page, action: string, fields: Record<string, string>): Promise<{ status: number; text: string }> {
  return page.evaluate(
    async ([url, body]) => {
      // The page's own CSRF token (every console form carries it), as a form of the page would send it.
      const doc = (globalThis as unknown as { document: { querySelector(s: string): { value: string } | null } }).document;
      const csrf = doc.querySelector('input[name="csrf"]')?.value ?? '';
      const res = await fetch(url, { method: 'POST', body: new URLSearchParams({ ...body, csrf }), redirect: 'manual' });
      return { status: res.status, text: await res.text() };
    },
    [action, fields] as const,
  );
}

async function requestOrder(channel: string): Promise<{ run: RunRow; approvalId: string }> {
  await h.send(
    slashCommand({ text: 'run purchase-order vendor=Acme amount=5000 currency=EUR reason=laptops', userId: ALICE, teamId: TEAM, channelId: channel }),
  );
  const run = await poll(async () => (await db.pool.query<RunRow>(`SELECT * FROM tollgate.runs WHERE origin->>'conversation' = $1`, [channel])).rows[0], {
    message: 'the run',
  });
  await waitForRun(h.runtime, run.id, 'waiting');
  const approvalId = await poll(
    async () => (await db.pool.query<{ id: string }>('SELECT id FROM tollgate.approvals WHERE run_id = $1', [run.id])).rows[0]?.id,
    { message: 'the approval' },
  );
  return { run, approvalId };
}

describe('deciding in the console', () => {
  it('an approver approves on My approvals: the run resumes, every Slack copy is updated, other open pages follow live', async () => {
    h.fake.setUser(ALICE, { realName: 'Alice Liddell' });
    // What the sign-in's profile would say of FIN1 (the oidc branch calls this at sign-in).
    await h.chat.core.rememberName(slack(FIN1), 'Fiona Finance', 'oidc');
    const channel = 'CORDERS01';
    const { run, approvalId } = await requestOrder(channel);
    // The run message and its thread copy, and each approver's DM.
    const copies = (): FakeMessage[] => [
      ...h.fake.messagesIn(channel).filter((m) => blocksText(m.blocks).includes(approvalId)),
      ...[FIN1, FIN2].flatMap((u) => h.fake.messagesIn(`D${u}`).filter((m) => !m.thread_ts && blocksText(m.blocks).includes(approvalId))),
    ];
    await poll(() => copies().length === 4, { message: 'the run message, the thread copy and two DMs', detail: () => `${copies().length} copies` });

    // FIN2 keeps My approvals open; it follows without a reload.
    const watcher = await signedIn(FIN2);
    await watcher.goto(`${h.url}/console/my/approvals`);
    await watcher.locator(`[data-testid=waiting] [data-approval-id="${approvalId}"]`).waitFor();
    await watcher.evaluate(() => {
      (globalThis as unknown as { loadedOnce: string }).loadedOnce = 'still the same page';
    });

    // FIN1 signs in, follows the layout's link to My approvals, and sees the request by name.
    const fin = await signedIn(FIN1);
    await fin.click('nav a:has-text("My approvals")');
    await fin.waitForURL(`${h.url}/console/my/approvals`);
    expect(await fin.locator('[data-testid=who]').textContent()).toContain('Signed in as Fiona Finance (Slack)');
    const card = fin.locator(`[data-testid=waiting] [data-approval-id="${approvalId}"]`);
    await card.waitFor();
    expect(await card.locator('[data-testid=requested-by]').textContent()).toContain('Alice Liddell (Slack)');
    await shot(fin, 'my-approvals.png');

    // Reject without a reason: the form refuses (the field is required), nothing is sent or recorded.
    await card.locator('button:has-text("Reject")').click();
    expect(await card.locator('[data-testid=reason]').evaluate((el) => (el as unknown as { validity: { valueMissing: boolean } }).validity.valueMissing)).toBe(
      true,
    );
    expect(fin.url()).toBe(`${h.url}/console/my/approvals`);
    // Sent anyway (without the browser's check), the core refuses it with the sentence every platform uses.
    const bare = await postFrom(fin, `/console/approvals/${approvalId}/reject`, { back: '/console/my/approvals', comment: '  ' });
    expect(bare.status).toBe(400);
    expect(bare.text).toContain(REJECT_REASON_REQUIRED);
    expect(await decisions(approvalId)).toEqual([]);

    // Approve.
    await card.locator('button:has-text("Approve")').click();
    expect(await fin.locator('[data-testid=notice]').textContent()).toContain(`Recorded: you approved ${approvalId}`);
    expect((await waitForRun(h.runtime, run.id, ['succeeded', 'failed'])).status).toBe('succeeded');
    expect(await decisions(approvalId)).toEqual([{ principal: slack(FIN1), decision: 'approve', via: 'console', display_name: 'Fiona Finance' }]);
    const decided = fin.locator(`[data-testid=decided] [data-approval-id="${approvalId}"]`);
    expect(await decided.locator('[data-testid=decisions]').textContent()).toContain('Fiona Finance (Slack)');
    await shot(fin, 'approved.png');

    // Every Slack copy was updated through chat.update: it names the approver and offers no buttons.
    await poll(
      () =>
        copies().every(
          (m) => m.updates > 0 && blocksText(m.blocks).includes(`*Approved* by <@${FIN1}>`) && !blocksText(m.blocks).includes('"action_id":"approval.approve"'),
        ),
      {
        message: 'every Slack copy to show the approval, without buttons',
        detail: () =>
          copies()
            .map((m) => `${m.channel}/${m.ts}: ${m.updates}`)
            .join(', '),
      },
    );
    const updated = new Set(h.fake.callsTo('chat.update').map((c) => `${String(c.args.channel)}/${String(c.args.ts)}`));
    for (const m of copies()) expect(updated).toContain(`${m.channel}/${m.ts}`);

    // FIN2's open page followed without a reload: nothing waits for them any more.
    await watcher.locator('[data-testid=nothing-waiting]').waitFor();
    expect(await watcher.evaluate(() => (globalThis as unknown as { loadedOnce?: string }).loadedOnce)).toBe('still the same page');
    await shot(watcher, 'live.png');

    // My runs: Alice's run is not FIN1's.
    await fin.click('nav a:has-text("My runs")');
    await fin.locator('[data-testid=no-runs]').waitFor();
  });

  it('someone the policy does not allow sees no buttons, and a decision they post is refused with nothing recorded', async () => {
    const { run, approvalId } = await requestOrder('CORDERS02');
    const bob = await signedIn(BOB);
    await bob.goto(`${h.url}/console/my/approvals`);
    await bob.locator('[data-testid=nothing-waiting]').waitFor();
    await bob.goto(`${h.url}/console/approvals`);
    const card = bob.locator(`[data-approval-id="${approvalId}"]`);
    await card.waitFor();
    expect(await card.locator('[data-testid=decide]').count()).toBe(0);
    expect(await card.locator('button').count()).toBe(0);

    const refused = await postFrom(bob, `/console/approvals/${approvalId}/approve`, { back: '/console/approvals' });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain(`Not allowed: ${slack(BOB)} is not one of the approvers`);
    expect(await decisions(approvalId)).toEqual([]);
    expect((await h.runtime.getRun(run.id)).run.status).toBe('waiting');

    // Not signed in: read-only, no buttons, and a POST decides nothing.
    // A POST with no session is refused before it reaches the route (no CSRF token can be bound to nobody's session).
    const anonymous = await fetch(`${h.url}/console/approvals/${approvalId}/approve`, { method: 'POST', headers: { origin: h.url }, redirect: 'manual' });
    expect(anonymous.status).toBe(403);
    expect(await anonymous.text()).toContain('nothing was changed');
    expect(await decisions(approvalId)).toEqual([]);
  });
});

describe('the one eligibility rule decides the buttons', () => {
  it('a requester among the approvers may reject their own request but not approve it, as in chat', async () => {
    const run = await h.runtime.startRun({ workflow: 'mixed-sign-off', input: {}, requester: parsePrincipal(slack(FIN1)) });
    await waitForRun(h.runtime, run.id, 'waiting');
    const approvalId = await poll(
      async () => (await db.pool.query<{ id: string }>('SELECT id FROM tollgate.approvals WHERE run_id = $1', [run.id])).rows[0]?.id,
      { message: 'the approval' },
    );
    const auth = { authorization: `Bearer ${TOKENS[FIN1]}` };
    const page = await (await fetch(`${h.url}/console/my/approvals`, { headers: auth })).text();
    const card = page.slice(page.indexOf(`data-approval-id="${approvalId}"`));
    expect(card).toContain(`action="/console/approvals/${approvalId}/reject"`);
    expect(card.slice(0, card.indexOf('</section>'))).not.toContain(`action="/console/approvals/${approvalId}/approve"`);
    const own = await fetch(`${h.url}/console/approvals/${approvalId}/approve`, { method: 'POST', headers: { ...auth, origin: h.url }, redirect: 'manual' });
    expect(own.status).toBe(403);
    expect(await own.text()).toContain('this policy does not let requesters approve their own requests');
    expect(await decisions(approvalId)).toEqual([]);
    const rejected = await fetch(`${h.url}/console/approvals/${approvalId}/reject`, {
      method: 'POST',
      headers: { ...auth, origin: h.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ back: '/console/my/approvals', comment: 'Asked by mistake' }),
      redirect: 'manual',
    });
    expect(rejected.status).toBe(303);
    expect(rejected.headers.get('location')).toBe(`/console/my/approvals?decided=${approvalId}&as=reject`);
    expect(await decisions(approvalId)).toMatchObject([{ principal: slack(FIN1), decision: 'reject', via: 'console' }]);
    expect((await waitForRun(h.runtime, run.id, 'succeeded')).output).toBe('rejected'); // the workflow returns its gate's status
  });
});

describe('people by name', () => {
  it('a Teams tally names its approver from from.name; the console and the CLI show names with their platform', async () => {
    const run = await h.runtime.startRun({ workflow: 'mixed-sign-off', input: {}, requester: parsePrincipal(slack(ALICE)) });
    await waitForRun(h.runtime, run.id, 'waiting');
    const approvalId = await poll(
      async () => (await db.pool.query<{ id: string }>('SELECT id FROM tollgate.approvals WHERE run_id = $1', [run.id])).rows[0]?.id,
      { message: 'the approval' },
    );
    const teams = h.teams!;
    const conversation = { id: 'a:tess-personal', conversationType: 'personal' as const };
    const res = await teams.send(teams.act.invoke({ verb: 'approval.approve', data: { approvalId }, from: TESS, tenant: TENANT, conversation }));
    expect(res.status).toBe(200);
    // The card answered to the click: its tally names Tess as Teams sent her name.
    expect(JSON.stringify(res.body)).toContain('So far: 1 of 2 approvals (approved by Tess Teams (Teams)');
    expect(JSON.stringify(res.body)).toContain('Asked by Alice Liddell (Slack)'); // the directory's name, from Slack's users.info
    expect(await decisions(approvalId)).toEqual([{ principal: TESS_PRINCIPAL, decision: 'approve', via: 'teams', display_name: 'Tess Teams' }]);

    // She is renamed in Teams: the directory follows; her decision keeps the name it was made under.
    await teams.send(teams.act.message({ text: 'help', from: { ...TESS, name: 'Tess T. Teams' }, tenant: TENANT, conversation }));
    const { rows } = await db.pool.query<{ display_name: string; source: string }>('SELECT display_name, source FROM tollgate.people WHERE principal = $1', [
      TESS_PRINCIPAL,
    ]);
    expect(rows).toEqual([{ display_name: 'Tess T. Teams', source: 'teams' }]);
    expect((await decisions(approvalId))[0]?.display_name).toBe('Tess Teams');

    // The console: the requester as the directory calls her now, the decision as it was made.
    const page = await (await fetch(`${h.url}/console/runs/${run.id}`)).text();
    expect(page).toContain('<strong>Alice Liddell</strong> <span class="muted">(Slack)</span>');
    expect(page).toContain(`data-principal="${TESS_PRINCIPAL}" title="${TESS_PRINCIPAL}"><strong>Tess Teams</strong> <span class="muted">(Teams)</span>`);

    // The CLI: names with their platform, then the principal.
    const cli = inProcessCli(() => db);
    const shown = await cli('approvals', 'show', approvalId);
    expect(shown.code).toBe(0);
    expect(shown.out).toContain(`Tess Teams (Teams) ${TESS_PRINCIPAL}`);
    expect(shown.out).toContain(`requested by Alice Liddell (Slack) ${slack(ALICE)}`);
    const runShown = await cli('runs', 'show', run.id);
    expect(runShown.code).toBe(0);
    expect(runShown.out).toContain(`requested by Alice Liddell (Slack) ${slack(ALICE)} at`);
  });
});
