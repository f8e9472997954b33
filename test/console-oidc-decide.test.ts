/**
 * Issue 22's Chromium must-show end to end: a person signs in to the console through a real
 * OpenID provider (oidc-provider 8, test/fakes/oidc), with Slack-shaped and Microsoft-shaped ID
 * tokens (the same tests run for both), opens "My approvals" and decides there. Behind it: the real
 * HTTP server with the Slack and Teams adapters, the chat layer, a real worker delivering the
 * outbox, and the fakes of Slack's Web API and of Teams (test/helpers/slack.ts).
 *
 * The order is requested in Slack by a Slack user, and group `finance` holds two Slack approvers
 * and one Teams approver, so every approval has Slack copies (the run message, its thread copy,
 * two DMs) and a Teams 1:1 card whichever shape signs in. The Slack-shaped person is one of the
 * Slack approvers (`slack:<team>:<user>`), the Microsoft-shaped one is the Teams approver
 * (`teams:<tid>:<oid>`): after a console Approve by either, every Slack copy is updated through
 * chat.update and the Teams card through updateActivity.
 *
 * Refused, with nothing recorded: a Reject without a reason (in the form, and by the server when
 * posted anyway with the CSRF token), a decision without the CSRF token, a decision by a signed-in
 * person the policy does not allow, and any decision after sign-out or after
 * `tollgate console sessions revoke`. The console token is not set (an open, loopback console),
 * so a signed-out browser still reaches the decision route with a valid CSRF token of its own:
 * it decides nothing because nobody is signed in, not because it could not read.
 * Screenshots go to test/.artifacts/console-oidc-decide/ (ignored by git).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './helpers/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executeActions, type AdaptiveCard } from '../bots/teams/cards.ts';
import { REJECT_REASON_REQUIRED } from '../src/chat/sentences.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { mountConsole, type ConsoleHandle } from '../src/console/index.ts';
import type { RunRow } from '../src/db/queries/runs.ts';
import { createHttpServer, type HttpServer } from '../src/server/http.ts';
import { purchaseOrderWorkflow } from '../src/workflows/purchase-order.ts';
import { principalOf, startFakeOidc, type ClaimShape, type FakeOidc, type FakePerson } from './fakes/oidc/provider.ts';
import { slashCommand } from './fakes/slack/requests.ts';
import type { FakeMessage } from './fakes/slack/server.ts';
import { inProcessCli } from './helpers/cli.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { poll } from './helpers/poll.ts';
import { waitForRun } from './helpers/runtime.ts';
import { blocksText, startSlackHarness, type SlackHarness } from './helpers/slack.ts';

const ARTIFACTS = path.join(import.meta.dirname, '.artifacts', 'console-oidc-decide');
const CALLBACK = '/console/sign-in/oidc/callback';

const TEAM = 'T0ALLOWED';
const MS_TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const ALICE = 'UALICE01'; // requests, in Slack
const FIN2 = 'UFIN0002'; // a Slack approver who never signs in to the console

/** Who signs in, per claim shape: an approver (in group finance) and someone the policy does not list. */
const PEOPLE: Record<ClaimShape, { approver: FakePerson; bystander: FakePerson }> = {
  slack: {
    approver: { shape: 'slack', tenant: TEAM, user: 'UFIN0001', name: 'Fiona Finance' },
    bystander: { shape: 'slack', tenant: TEAM, user: 'UBOB0001', name: 'Bob Bystander' },
  },
  microsoft: {
    approver: { shape: 'microsoft', tenant: MS_TENANT, user: '00000000-0000-4000-8000-00000000f1a2', name: 'Morgan Finance' },
    bystander: { shape: 'microsoft', tenant: MS_TENANT, user: '00000000-0000-4000-8000-0000000000b0', name: 'Bo Bystander' },
  },
};
const slack = (u: string) => `slack:${TEAM}:${u}`;
const SLACK_APPROVERS = [PEOPLE.slack.approver.user, FIN2];

const PROJECT = {
  tenants: [TEAM, MS_TENANT],
  groups: { finance: [principalOf(PEOPLE.slack.approver), slack(FIN2), principalOf(PEOPLE.microsoft.approver)] },
  workflows: { 'purchase-order': { approvalThreshold: 1000 } },
};
const project = parseProjectConfig(PROJECT);

let db: TestDb;
let h: SlackHarness;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  db = await createTestDb();
  h = await startSlackHarness(db, [purchaseOrderWorkflow(project)], { project, teams: true });
  h.fake.setUser(ALICE, { realName: 'Alice Liddell' });
  browser = await launchChromium();
});

afterAll(async () => {
  await Promise.all(contexts.map((c) => c.close()));
  await browser?.close();
  await h?.stop();
  await db?.close();
});

async function decisions(approvalId: string): Promise<{ principal: string; decision: string; via: string | null; display_name: string | null }[]> {
  const { rows } = await db.pool.query<{ principal: string; decision: string; via: string | null; display_name: string | null }>(
    'SELECT principal, decision, via, display_name FROM tollgate.approval_decisions WHERE approval_id = $1 ORDER BY decided_at',
    [approvalId],
  );
  return rows;
}

/** A purchase order above the threshold, requested in Slack by Alice in `channel`: its run waits on finance. */
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

/** The Slack copies of an approval: the run message and its thread copy in the channel, and each Slack approver's DM. */
function slackCopies(channel: string, approvalId: string): FakeMessage[] {
  return [
    ...h.fake.messagesIn(channel).filter((m) => blocksText(m.blocks).includes(approvalId)),
    ...SLACK_APPROVERS.flatMap((u) => h.fake.messagesIn(`D${u}`).filter((m) => !m.thread_ts && blocksText(m.blocks).includes(approvalId))),
  ];
}

const cardOf = (a: Record<string, unknown>): AdaptiveCard => (a.attachments as { content: AdaptiveCard }[])[0]!.content;
const hasSlackButtons = (m: FakeMessage) => blocksText(m.blocks).includes('"action_id":"approval.approve"');
const hasTeamsButtons = (c: AdaptiveCard) => executeActions(c).some((a) => a.verb === 'approval.approve');

/** The Teams approver's 1:1 card for this approval, as it stands now. */
function teamsCopy(approvalId: string): { conversationId: string; id: string; card: AdaptiveCard } | undefined {
  const connector = h.teams!.connector;
  for (const c of connector.conversations) {
    for (const a of connector.activitiesIn(c.id)) {
      if (Array.isArray(a.activity.attachments) && JSON.stringify(a.activity).includes(approvalId)) {
        return { conversationId: c.id, id: a.id, card: cardOf(a.activity) };
      }
    }
  }
  return undefined;
}

/** A form POST from the page itself (its cookies, its Origin), with exactly these fields: no browser check in between. */
async function postFrom(page: Page, action: string, fields: Record<string, string>): Promise<{ status: number; text: string }> {
  return page.evaluate(
    async ([url, body]) => {
      const res = await fetch(url, { method: 'POST', body: new URLSearchParams(body), redirect: 'manual' });
      return { status: res.status, text: await res.text() };
    },
    [action, fields] as const,
  );
}

/** The CSRF token the page's forms carry. */
const csrfOf = (page: Page): Promise<string> =>
  page
    .locator('input[name="csrf"]')
    .first()
    .getAttribute('value')
    .then((v) => v ?? '');

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });

describe.each(['slack', 'microsoft'] as const)('deciding in the console after a %s-shaped OpenID Connect sign-in', (shape) => {
  const { approver, bystander } = PEOPLE[shape];
  const APPROVER = principalOf(approver);
  let server: HttpServer;
  let webConsole: ConsoleHandle;
  let fake: FakeOidc;
  let base: string;

  beforeAll(async () => {
    // A console of its own per claim shape, deciding through the harness's chat layer (one Slack, one Teams).
    server = createHttpServer({ log: testLogger(), checks: { pool: db.pool } });
    base = `http://127.0.0.1:${(await server.listen(0, '127.0.0.1')).port}`;
    fake = await startFakeOidc({ redirectUris: [`${base}${CALLBACK}`] });
    webConsole = mountConsole(server, {
      config: {
        host: '127.0.0.1',
        console: {
          token: undefined,
          publicUrl: base,
          oidc: { issuer: fake.issuer, clientId: fake.clientId, clientSecret: fake.clientSecret },
          sessionIdleMs: 8 * 3_600_000,
          sessionMaxMs: 7 * 24 * 3_600_000,
        },
      },
      project: parseProjectConfig({ ...PROJECT, console: { oidc: { principal: shape } } }),
      runtime: h.runtime,
      log: testLogger(),
      liveIntervalMs: 200,
      chat: h.chat.core,
    });
  });

  afterAll(async () => {
    webConsole?.close();
    await server?.close();
    await fake?.close();
  });

  /** Signs in in a fresh Chromium context, through the provider, as `person`; lands on /console. */
  async function signedIn(person: FakePerson): Promise<Page> {
    fake.signInAs(person);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${base}/console/sign-in`);
    await page.click('[data-testid=oidc-sign-in]');
    await page.waitForURL(`${base}/console`);
    expect(await page.locator('[data-testid=who] [data-principal]').getAttribute('data-principal')).toBe(principalOf(person));
    return page;
  }

  it('in Chromium: signs in, approves on My approvals, the run resumes, and every Slack copy and the Teams card are updated; a Reject without a reason is refused', async () => {
    const channel = `C${shape.toUpperCase()}01`;
    const { run, approvalId } = await requestOrder(channel);
    await poll(() => slackCopies(channel, approvalId).length === 4 && teamsCopy(approvalId), {
      message: 'the run message, the thread copy, two Slack DMs and the Teams card',
      detail: () => `${slackCopies(channel, approvalId).length} Slack copies, Teams card: ${teamsCopy(approvalId) ? 'yes' : 'no'}`,
    });
    for (const m of slackCopies(channel, approvalId)) expect(hasSlackButtons(m)).toBe(true);
    const teamsCard = teamsCopy(approvalId)!;
    expect(hasTeamsButtons(teamsCard.card)).toBe(true);

    const page = await signedIn(approver);
    expect(await page.locator('[data-testid=who]').textContent()).toContain(approver.name);
    await page.click('nav a:has-text("My approvals")');
    await page.waitForURL(`${base}/console/my/approvals`);
    const card = page.locator(`[data-testid=waiting] [data-approval-id="${approvalId}"]`);
    await card.waitFor();
    expect(await card.locator('[data-testid=requested-by]').textContent()).toContain('Alice Liddell (Slack)');
    await shot(page, `my-approvals-${shape}.png`);

    // Reject without a reason: the browser refuses the form (the reason is required); nothing is sent.
    await card.locator('button:has-text("Reject")').click();
    expect(await card.locator('[data-testid=reason]').evaluate((el) => (el as unknown as { validity: { valueMissing: boolean } }).validity.valueMissing)).toBe(
      true,
    );
    expect(page.url()).toBe(`${base}/console/my/approvals`);
    // Posted anyway, with the session's CSRF token: the server refuses it too, and records nothing.
    const bare = await postFrom(page, `/console/approvals/${approvalId}/reject`, { csrf: await csrfOf(page), back: '/console/my/approvals', comment: '  ' });
    expect(bare.status).toBe(400);
    expect(bare.text).toContain(REJECT_REASON_REQUIRED);
    expect(await decisions(approvalId)).toEqual([]);
    expect((await h.runtime.getRun(run.id)).run.status).toBe('waiting');

    // Approve: recorded through the chat layer as the principal chat knows, by the name the provider gave.
    await card.locator('button:has-text("Approve")').click();
    expect(await page.locator('[data-testid=notice]').textContent()).toContain(`Recorded: you approved ${approvalId}`);
    expect(await decisions(approvalId)).toEqual([{ principal: APPROVER, decision: 'approve', via: 'console', display_name: approver.name }]);
    expect((await waitForRun(h.runtime, run.id, ['succeeded', 'failed'])).status).toBe('succeeded');
    const steps = (await h.runtime.getRun(run.id)).events.map((e) => e.type);
    expect(steps).toContain('run.succeeded');
    await page.locator(`[data-testid=decided] [data-approval-id="${approvalId}"]`).waitFor();
    await shot(page, `approved-${shape}.png`);

    // Every Slack copy is updated through chat.update: approved, naming the approver, no buttons left.
    const approvedBy = shape === 'slack' ? `*Approved* by <@${approver.user}>` : `*Approved* by ${approver.name} (Teams)`;
    await poll(() => slackCopies(channel, approvalId).every((m) => m.updates > 0 && blocksText(m.blocks).includes(approvedBy) && !hasSlackButtons(m)), {
      message: `every Slack copy to show "${approvedBy}" without buttons`,
      detail: () =>
        slackCopies(channel, approvalId)
          .map((m) => `${m.channel}/${m.ts}: ${m.updates} updates; ${blocksText(m.blocks).slice(0, 400)}`)
          .join('\n'),
    });
    const updated = new Set(h.fake.callsTo('chat.update').map((c) => `${String(c.args.channel)}/${String(c.args.ts)}`));
    const copies = slackCopies(channel, approvalId);
    expect(copies).toHaveLength(4);
    for (const m of copies) expect(updated).toContain(`${m.channel}/${m.ts}`);
    // And the Teams approver's card, through updateActivity (the same activity, redrawn).
    const teamsNow = () => h.teams!.connector.activity(teamsCard.conversationId, teamsCard.id);
    await poll(
      () => {
        const t = teamsNow();
        return t && t.updates > 0 && !hasTeamsButtons(cardOf(t.activity)) && JSON.stringify(cardOf(t.activity)).includes('**Approved** by');
      },
      { message: 'the Teams card to show the approval without buttons', detail: () => JSON.stringify(teamsNow()?.activity ?? null).slice(0, 1500) },
    );
  });

  it('a decision posted by the signed-in approver without the CSRF token (or with another) is refused with nothing recorded; the form with it goes through', async () => {
    const { run, approvalId } = await requestOrder(`C${shape.toUpperCase()}02`);
    const page = await signedIn(approver);
    await page.goto(`${base}/console/my/approvals`);
    const card = page.locator(`[data-testid=waiting] [data-approval-id="${approvalId}"]`);
    await card.waitFor();

    const without = await postFrom(page, `/console/approvals/${approvalId}/approve`, { back: '/console/my/approvals' });
    expect(without.status).toBe(403);
    expect(without.text).toContain('This form did not carry the token of your session');
    const wrong = await postFrom(page, `/console/approvals/${approvalId}/approve`, { back: '/console/my/approvals', csrf: 'x'.repeat(43) });
    expect(wrong.status).toBe(403);
    expect(await decisions(approvalId)).toEqual([]);
    expect((await h.runtime.getRun(run.id)).run.status).toBe('waiting');

    // The same person, the same decision, from the page's own form (its token): recorded.
    await card.locator('button:has-text("Approve")').click();
    expect(await page.locator('[data-testid=notice]').textContent()).toContain(`Recorded: you approved ${approvalId}`);
    expect(await decisions(approvalId)).toMatchObject([{ principal: APPROVER, decision: 'approve', via: 'console' }]);
    expect((await waitForRun(h.runtime, run.id, ['succeeded', 'failed'])).status).toBe('succeeded');
  });

  it('a signed-in person the policy does not allow sees no buttons, and a decision they post with their CSRF token is refused with nothing recorded', async () => {
    const { run, approvalId } = await requestOrder(`C${shape.toUpperCase()}03`);
    const page = await signedIn(bystander);
    await page.goto(`${base}/console/my/approvals`);
    await page.locator('[data-testid=nothing-waiting]').waitFor();
    await page.goto(`${base}/console/approvals`);
    const card = page.locator(`[data-approval-id="${approvalId}"]`);
    await card.waitFor();
    expect(await card.locator('[data-testid=decide]').count()).toBe(0);
    expect(await card.locator('button').count()).toBe(0);

    const csrf = await csrfOf(page); // the sign-out form's: the session's token
    expect(csrf).not.toBe('');
    for (const decision of ['approve', 'reject'] as const) {
      const refused = await postFrom(page, `/console/approvals/${approvalId}/${decision}`, { csrf, back: '/console/approvals', comment: 'Not mine to judge' });
      expect(refused.status).toBe(403);
      expect(refused.text).toContain(`Not allowed: ${principalOf(bystander)} is not one of the approvers`);
    }
    expect(await decisions(approvalId)).toEqual([]);
    expect((await h.runtime.getRun(run.id)).run.status).toBe('waiting');
    await h.runtime.cancel(run.id, null);
  });

  it('after sign-out, or with the session revoked by `tollgate console sessions revoke`, a decision POST decides nothing', async () => {
    const { run, approvalId } = await requestOrder(`C${shape.toUpperCase()}04`);
    const approve = `/console/approvals/${approvalId}/approve`;

    // Sign-out: the token of the page from before is refused, and so is a signed-out browser's own.
    const page = await signedIn(approver);
    await page.goto(`${base}/console/my/approvals`);
    await page.locator(`[data-testid=waiting] [data-approval-id="${approvalId}"]`).waitFor();
    const before = await csrfOf(page);
    await page.click('button:has-text("Sign out")');
    await page.waitForURL(`${base}/console`);
    expect(await page.locator('[data-testid=who]').textContent()).toContain('Not signed in');
    const stale = await postFrom(page, approve, { csrf: before, back: '/console/my/approvals' });
    expect(stale.status).toBe(403);
    expect(stale.text).toContain('This form did not carry the token of your session');
    await page.goto(`${base}/console/sign-in`); // the signed-out browser's own, valid CSRF token
    const anonymous = await postFrom(page, approve, { csrf: await csrfOf(page), back: '/console/approvals' });
    expect(anonymous.status).toBe(403);
    expect(anonymous.text).toContain('Sign in to decide');
    expect(await decisions(approvalId)).toEqual([]);

    // Revoked: every session of the approver's, from the CLI, while the browser still holds its cookie.
    const again = await signedIn(approver);
    await again.goto(`${base}/console/my/approvals`);
    await again.locator(`[data-testid=waiting] [data-approval-id="${approvalId}"]`).waitFor();
    const token = await csrfOf(again);
    const cli = inProcessCli(() => db);
    const listed = await cli('console', 'sessions', 'list', '--json');
    expect(listed.code).toBe(0);
    const mine = (JSON.parse(listed.out) as { id: string; principal: string }[]).filter((s) => s.principal === APPROVER);
    expect(mine.length).toBeGreaterThan(0);
    for (const s of mine) expect((await cli('console', 'sessions', 'revoke', s.id)).code).toBe(0);
    const revoked = await postFrom(again, approve, { csrf: token, back: '/console/my/approvals' });
    expect(revoked.status).toBe(403);
    expect(revoked.text).toContain('This form did not carry the token of your session');
    await again.goto(`${base}/console/sign-in`);
    expect(await again.locator('[data-testid=session-ended]').count()).toBe(1);
    const afterRevoke = await postFrom(again, approve, { csrf: await csrfOf(again), back: '/console/approvals' });
    expect(afterRevoke.status).toBe(403);
    expect(afterRevoke.text).toContain('Sign in to decide');

    expect(await decisions(approvalId)).toEqual([]);
    expect((await h.runtime.getRun(run.id)).run.status).toBe('waiting');
    await h.runtime.cancel(run.id, null);
  });
});
