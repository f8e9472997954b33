/**
 * The Teams adapter end to end over HTTP: activities carrying JWTs that botbuilder really
 * validates (against the local OpenID/JWKS fake) into our server's `POST /api/messages`, a real
 * Graphile worker delivering the outbox, and the local Bot Connector receiving cards through
 * botbuilder's connector client with a managed-identity token (test/fakes/teams).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startApp } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import type { RunRow } from '../src/db/queries/runs.ts';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { TeamsBot } from '../bots/teams/bot.ts';
import { executeActions, reasonInputId, type AdaptiveCard } from '../bots/teams/cards.ts';
import { createHttpServer } from '../src/server/http.ts';
import { newConversation, sendActivity, type TeamsConversation, type TeamsUser } from './fakes/teams/index.ts';
import { intentsCarriedOut } from './helpers/intents.ts';
import { parse, size } from './helpers/adaptive-cards.ts';
import { createTestDb, type TestDb, TEST_AUDIT_ENV } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { waitForRun } from './helpers/runtime.ts';
import { startSlackHarness, type SlackHarness } from './helpers/slack.ts';
import { poll } from './helpers/poll.ts';
import type { TeamsParts } from './helpers/teams.ts';

const TENANT = 'tenant-contoso';
const OTHER_TENANT = 'tenant-fabrikam';
const user = (n: string, name: string): TeamsUser & { name: string } => ({ id: `29:${n}`, aadObjectId: `aad-${n}`, name });
const REQ = user('req', 'Rita Requester');
const RM1 = user('rm1', 'Rana Release');
const RM2 = user('rm2', 'Remy Release');
const OPS = user('ops', 'Oli Operator');
const AUD = user('aud', 'Ada Auditor');
/** Same AAD object id as RM2, but in another tenant: someone else. */
const RM2_ELSEWHERE = { ...RM2, id: '29:rm2-elsewhere' };
const principal = (u: TeamsUser, tenant = TENANT) => `teams:${tenant}:${u.aadObjectId}`;

let failing = true;
const workflows = [
  defineWorkflow({
    name: 'steps',
    version: 1,
    description: 'n quick steps',
    // `hold`: the first step waits for the test's `stepsHeld` (a card seen before the run ends).
    input: z.object({ n: z.coerce.number().int().min(1).max(60).default(3), hold: z.string().optional() }),
    run: async (ctx) => {
      const held = ctx.input.hold ? stepsHeld : undefined;
      for (let i = 1; i <= ctx.input.n; i++)
        await ctx.step(`step ${i}`, async () => {
          if (i === 1) await held;
          return i;
        });
      return ctx.input.n;
    },
  }),
  defineWorkflow({
    name: 'ship',
    version: 1,
    description: 'Ships after a release manager approves',
    input: z.object({ service: z.string().min(1), version: z.string().min(1) }),
    run: async (ctx) => {
      const { input } = ctx;
      const gate = await ctx.approval('ship it', {
        policy: { groups: ['release'], quorum: 1 },
        summary: `Ship ${input.service} ${input.version}`,
        params: input,
      });
      return gate.status;
    },
  }),
  defineWorkflow({
    name: 'audited',
    version: 1,
    description: 'Waits for the auditor',
    input: z.object({}),
    run: async (ctx) => (await ctx.approval('audit', { policy: { groups: ['audit'], quorum: 1 }, summary: 'Audit this', params: {} })).status,
  }),
  defineWorkflow({
    name: 'flaky',
    version: 1,
    description: 'Fails until the test lets it pass',
    input: z.object({}),
    run: async (ctx) =>
      ctx.step(
        'call the service',
        () => {
          if (failing) throw new Error('the service is down');
          return 'ok';
        },
        { retry: { maxAttempts: 1 } },
      ),
  }),
] as unknown as WorkflowDefinition[];

const project = parseProjectConfig({
  groups: { release: [principal(RM1), principal(RM2)], audit: [principal(AUD)] },
  operators: [principal(OPS)],
});

let db: TestDb;
let h: SlackHarness;
let t: TeamsParts;

beforeAll(async () => {
  db = await createTestDb();
  h = await startSlackHarness(db, workflows, { project, teams: true });
  t = h.teams!;
});
afterAll(async () => {
  await h?.stop();
  await db?.close();
});

const personal = (u: TeamsUser): TeamsConversation => ({ id: `a:personal-${u.aadObjectId}`, conversationType: 'personal' });
const cardOfActivity = (a: Record<string, unknown>): AdaptiveCard => (a.attachments as { content: AdaptiveCard }[])[0]!.content;
const cardText = (c: AdaptiveCard) => JSON.stringify(c);
const buttons = (c: AdaptiveCard) => executeActions(c).map((a) => a.verb);

async function say(from: TeamsUser, conversation: TeamsConversation, text: string, o: { mentionBot?: boolean; tenant?: string } = {}) {
  const activity = t.act.message({
    text,
    from,
    tenant: o.tenant ?? TENANT,
    conversation,
    mentionBot: o.mentionBot ?? conversation.conversationType !== 'personal',
  });
  const res = await t.send(activity);
  expect(res.status).toBe(200);
  return activity;
}

async function click(
  from: TeamsUser,
  conversation: TeamsConversation,
  verb: string,
  data: Record<string, unknown>,
  o: { replyToId?: string; tenant?: string; id?: string } = {},
) {
  const activity = t.act.invoke({ verb, data, from, tenant: o.tenant ?? TENANT, conversation, ...(o.replyToId ? { replyToId: o.replyToId } : {}) });
  if (o.id) activity.id = o.id;
  const res = await t.send(activity);
  expect(res.status).toBe(200);
  const body = res.body as { statusCode: number; type: string; value: AdaptiveCard };
  expect(body.type).toBe('application/vnd.microsoft.card.adaptive');
  return body.value;
}

/** Asks for a run in a conversation and returns it (the newest run started there). */
async function startRun(from: TeamsUser, conversation: TeamsConversation, text: string): Promise<RunRow> {
  const runsIn = async () =>
    (await db.pool.query<RunRow>(`SELECT * FROM tollgate.runs WHERE origin->>'conversation' = $1 ORDER BY created_at DESC`, [conversation.id])).rows;
  const before = (await runsIn()).length;
  await say(from, conversation, text);
  return poll(
    async () => {
      const rows = await runsIn();
      return rows.length > before ? rows[0] : undefined;
    },
    { message: 'the run' },
  );
}

/** The card activities the bot posted in a conversation (a thread's replies included). */
/** What a `steps` run started with `hold=…` waits for in its first step. */
let stepsHeld: Promise<void> = Promise.resolve();

const cardsIn = (conversationId: string) => t.connector.activitiesIn(conversationId).filter((a) => Array.isArray(a.activity.attachments));

describe('messages', () => {
  it('a message starts a run; its card is posted where it was asked and updated in place until the run succeeds', async () => {
    const conv = personal(REQ);
    // The first step waits until the card is posted, so the card is then updated, not first posted finished.
    let release = () => {};
    stepsHeld = new Promise<void>((r) => (release = r));
    const run = await startRun(REQ, conv, 'run steps n=4 hold=yes');
    await poll(() => cardsIn(conv.id).find((a) => cardText(cardOfActivity(a.activity)).includes(run.id)), {
      message: 'the run card, posted while the run runs',
    });
    release();
    await waitForRun(h.runtime, run.id, 'succeeded');
    const card = await poll(() => cardsIn(conv.id).find((a) => cardText(cardOfActivity(a.activity)).includes('Succeeded')), {
      message: 'the card showing success',
    });
    expect(cardsIn(conv.id).filter((a) => cardText(cardOfActivity(a.activity)).includes(run.id))).toHaveLength(1); // one card, updated, not one per step
    const text = cardText(cardOfActivity(card.activity));
    for (let i = 1; i <= 4; i++) expect(text).toContain(`step ${i}`);
    expect(text).toContain(run.id);
    expect(text).toContain('Rita Requester');
    expect(t.connector.callsTo('updateActivity').some((c) => c.conversationId === conv.id)).toBe(true);
    // Outbound calls carry the managed-identity token botbuilder fetched from IDENTITY_ENDPOINT.
    expect(t.connector.callsTo('updateActivity').every((c) => c.token === t.identity.accessToken)).toBe(true);
  });

  it('in a channel, a mention is read with the mention stripped and answered in its thread', async () => {
    const conv = newConversation('channel', 'team-1');
    const asked = await say(REQ, conv, 'workflows');
    const reply = await poll(() => t.connector.callsTo('replyToActivity').find((c) => c.conversationId === conv.id), { message: 'the reply in the thread' });
    expect(reply.activityId).toBe(asked.id);
    const text = JSON.stringify(reply.body);
    for (const w of ['steps', 'ship', 'flaky']) expect(text).toContain(w);
  });

  it("a group chat gets the same commands: `runs` lists the sender's runs", async () => {
    const conv = newConversation('groupChat');
    await say(REQ, conv, 'runs');
    const reply = await poll(() => cardsIn(conv.id)[0], { message: 'the reply' });
    expect(cardText(cardOfActivity(reply.activity))).toContain('steps');
  });

  it('missing parameters get a form generated from the schema; its errors come back on the card, and a valid submission starts the run', async () => {
    const conv = personal(REQ);
    await say(REQ, conv, 'run ship service=api');
    const form = await poll(
      () =>
        cardsIn(conv.id)
          .map((a) => cardOfActivity(a.activity))
          .find((c) => buttons(c).includes('run.start')),
      { message: 'the form' },
    );
    const start = executeActions(form).find((a) => a.verb === 'run.start')!;
    expect(cardText(form)).toContain('"id":"param.version"');

    const again = await click(REQ, conv, 'run.start', { ...start.data, 'param.service': 'api', 'param.version': '' });
    expect(cardText(again)).toMatch(/version/i);
    expect(buttons(again)).toContain('run.start'); // the form again, with the error
    expect((await db.pool.query(`SELECT 1 FROM tollgate.runs WHERE workflow = 'ship' AND input->>'service' = 'api-form'`)).rowCount).toBe(0);

    const started = await click(REQ, conv, 'run.start', { ...start.data, 'param.service': 'api-form', 'param.version': '2.4' });
    expect(cardText(started)).toContain('Started');
    const run = await poll(
      async () => (await db.pool.query<RunRow>(`SELECT * FROM tollgate.runs WHERE workflow = 'ship' AND input->>'service' = 'api-form'`)).rows[0],
      { message: 'the run' },
    );
    expect(run.input).toEqual({ service: 'api-form', version: '2.4' });
    await h.runtime.cancel(run.id, null);
  });
});

describe('approval cards', () => {
  async function shipRun(version: string, requester: TeamsUser = REQ) {
    const conv = personal(requester);
    await say(requester, conv, `run ship service=api version=${version}`);
    const run = await poll(
      async () => (await db.pool.query<RunRow>(`SELECT * FROM tollgate.runs WHERE workflow = 'ship' AND input->>'version' = $1`, [version])).rows[0],
      { message: 'the run' },
    );
    await waitForRun(h.runtime, run.id, 'waiting');
    const approvalId = await poll(
      async () => (await db.pool.query<{ id: string }>('SELECT id FROM tollgate.approvals WHERE run_id = $1', [run.id])).rows[0]?.id,
      { message: 'the approval' },
    );
    return { run, conv, approvalId };
  }

  /** The approval card sent to an approver: in their personal chat with the bot (known, or created by the bot). */
  async function dmCard(approver: TeamsUser, approvalId: string) {
    return poll(
      () => {
        const created = t.connector.conversations.filter((c) =>
          (c.parameters.members as { aadObjectId?: string }[]).some((m) => m.aadObjectId === approver.aadObjectId),
        );
        for (const id of [personal(approver).id, ...created.map((c) => c.id)]) {
          const found = cardsIn(id).find((a) => cardText(cardOfActivity(a.activity)).includes(approvalId));
          if (found) return { conversationId: id, activityId: found.id, card: () => cardOfActivity(t.connector.activity(id, found.id)!.activity) };
        }
        return undefined;
      },
      { message: `the approval card for ${approver.name}` },
    );
  }

  it('approvers who never wrote to the bot get their card in a 1:1 conversation created first, then posted', async () => {
    const { approvalId, run } = await shipRun('1.0');
    const dm = await dmCard(RM2, approvalId);
    const created = t.connector.conversations.find((c) => c.id === dm.conversationId)!;
    expect(created.parameters).toMatchObject({ isGroup: false, tenantId: TENANT });
    expect(created.parameters.activity).toBeUndefined(); // created empty: a card sent with it could never be updated
    expect(buttons(dm.card())).toEqual(expect.arrayContaining(['approval.approve', 'approval.reject']));
    await h.runtime.cancel(run.id, null);
  });

  it('the Approve invoke resumes the run and returns the updated card; every copy updates and loses its buttons', async () => {
    const { run, conv, approvalId } = await shipRun('2.0');
    const dm = await dmCard(RM1, approvalId);
    const answered = await click(
      RM1,
      { id: dm.conversationId, conversationType: 'personal' },
      'approval.approve',
      { approvalId },
      { replyToId: dm.activityId },
    );
    expect(cardText(answered)).toContain('Recorded: you approved');
    expect(buttons(answered)).not.toContain('approval.approve');
    await waitForRun(h.runtime, run.id, 'succeeded');
    await poll(() => !buttons(dm.card()).includes('approval.approve') && cardText(dm.card()).includes('Approved'), { message: 'the DM card resolved' });
    await poll(
      () => {
        const runCard = cardsIn(conv.id)
          .map((a) => cardOfActivity(a.activity))
          .find((c) => cardText(c).includes(run.id));
        return runCard && cardText(runCard).includes('Succeeded') && !buttons(runCard).includes('approval.approve');
      },
      { message: 'the run card resolved' },
    );
  });

  it('Reject takes a reason from the card; without one nothing is recorded', async () => {
    const { run, approvalId } = await shipRun('3.0');
    const dm = await dmCard(RM2, approvalId);
    const at = { id: dm.conversationId, conversationType: 'personal' as const };
    const empty = await click(RM2, at, 'approval.reject', { approvalId, [reasonInputId(approvalId)]: '  ' }, { replyToId: dm.activityId });
    expect(cardText(empty)).toContain('Say why you reject it');
    expect((await db.pool.query('SELECT 1 FROM tollgate.approval_decisions WHERE approval_id = $1', [approvalId])).rowCount).toBe(0);

    await click(RM2, at, 'approval.reject', { approvalId, [reasonInputId(approvalId)]: 'not during the freeze' }, { replyToId: dm.activityId });
    expect((await waitForRun(h.runtime, run.id, 'succeeded')).output).toBe('rejected'); // the workflow reads the gate's outcome
    await poll(() => cardText(dm.card()).includes('not during the freeze') && !buttons(dm.card()).includes('approval.approve'), {
      message: 'the reason on the card',
    });
  });

  it('a user of another tenant with the same object id, and a requester approving their own request, are refused on the card; nothing changes', async () => {
    const { run, approvalId } = await shipRun('4.0');
    const elsewhere = await click(RM2_ELSEWHERE, personal(RM2_ELSEWHERE), 'approval.approve', { approvalId }, { tenant: OTHER_TENANT });
    expect(cardText(elsewhere)).toContain('Not allowed');
    expect(buttons(elsewhere)).not.toContain('approval.approve');

    const own = await shipRun('4.1', RM1);
    const self = await click(RM1, own.conv, 'approval.approve', { approvalId: own.approvalId });
    expect(cardText(self)).toMatch(/own request|requester/i);

    const { rows } = await db.pool.query('SELECT 1 FROM tollgate.approval_decisions WHERE approval_id = ANY($1)', [[approvalId, own.approvalId]]);
    expect(rows).toHaveLength(0);
    expect((await h.runtime.getRun(run.id)).run.status).toBe('waiting');
    expect((await h.runtime.getRun(own.run.id)).run.status).toBe('waiting');
    await h.runtime.cancel(run.id, null);
    await h.runtime.cancel(own.run.id, null);
  });

  it('an approver who only installed the app gets the card in that personal conversation, without a new one', async () => {
    const installed = { id: 'a:installed-by-aud', conversationType: 'personal' as const };
    expect((await t.send(t.act.installationUpdate({ tenant: TENANT, conversation: installed, from: AUD }))).status).toBe(200);
    const run = await startRun(REQ, personal(REQ), 'run audited');
    await waitForRun(h.runtime, run.id, 'waiting');
    const card = await poll(() => cardsIn(installed.id).find((a) => cardText(cardOfActivity(a.activity)).includes(run.id)), {
      message: 'the card in the installed conversation',
    });
    expect(buttons(cardOfActivity(card.activity))).toContain('approval.approve');
    const createdForAud = t.connector.conversations.filter((c) =>
      (c.parameters.members as { aadObjectId?: string }[]).some((m) => m.aadObjectId === AUD.aadObjectId),
    );
    expect(createdForAud).toHaveLength(0);
    await h.runtime.cancel(run.id, null);
  });

  it('on refresh, each viewer gets their own card: the approver with buttons, anyone else without', async () => {
    const { run, approvalId } = await shipRun('7.0');
    const dm = await dmCard(RM1, approvalId);
    const at = { id: dm.conversationId, conversationType: 'personal' as const };
    const forApprover = await click(RM1, at, 'card.refresh', { approvalId }, { replyToId: dm.activityId });
    expect(buttons(forApprover)).toEqual(expect.arrayContaining(['approval.approve', 'approval.reject']));
    const forOutsider = await click(OPS, at, 'card.refresh', { approvalId }, { replyToId: dm.activityId });
    expect(buttons(forOutsider)).not.toContain('approval.approve');
    expect(cardText(forOutsider)).toContain('Ship api 7.0');
    await h.runtime.cancel(run.id, null);
  });

  it('a requester whom the policy bars from approving their own request is not offered Approve on the card; an eligible approver still is', async () => {
    // ship's policy (group release, no allowSelfApproval): RM1 is an approver, but not of their own request.
    const own = await shipRun('7.1', RM1);
    const runCard = await poll(
      () => cardsIn(own.conv.id).find((a) => buttons(cardOfActivity(t.connector.activity(own.conv.id, a.id)!.activity)).includes('approval.approve')),
      { message: 'the run card with its approval' },
    );
    const onRunCard = await click(RM1, own.conv, 'card.refresh', { runId: own.run.id }, { replyToId: runCard.id });
    expect(cardText(onRunCard)).toContain('Approval for ship it');
    expect(buttons(onRunCard)).not.toContain('approval.approve');
    const byApproval = await click(RM1, own.conv, 'card.refresh', { approvalId: own.approvalId });
    expect(cardText(byApproval)).toContain('Ship api 7.1');
    expect(buttons(byApproval)).not.toContain('approval.approve');

    const dm = await dmCard(RM2, own.approvalId);
    const forApprover = await click(
      RM2,
      { id: dm.conversationId, conversationType: 'personal' },
      'card.refresh',
      { approvalId: own.approvalId },
      { replyToId: dm.activityId },
    );
    expect(buttons(forApprover)).toEqual(expect.arrayContaining(['approval.approve', 'approval.reject']));
    await h.runtime.cancel(own.run.id, null);
  });

  it('a duplicate invoke (the same activity re-sent) records one decision', async () => {
    const { run, approvalId } = await shipRun('5.0');
    const dm = await dmCard(RM2, approvalId);
    const at = { id: dm.conversationId, conversationType: 'personal' as const };
    await click(RM2, at, 'approval.approve', { approvalId }, { replyToId: dm.activityId, id: 'invoke-dup-1' });
    const second = await click(RM2, at, 'approval.approve', { approvalId }, { replyToId: dm.activityId, id: 'invoke-dup-1' });
    expect(cardText(second)).toContain('already recorded');
    const { rows } = await db.pool.query('SELECT 1 FROM tollgate.approval_decisions WHERE approval_id = $1', [approvalId]);
    expect(rows).toHaveLength(1);
    await waitForRun(h.runtime, run.id, 'succeeded');
  });

  it('in a burst (more decisions at once than are decided inline), an invoke is recorded and answered with a message at once; the worker decides it once and the card updates, and a refusal reaches the clicker in their personal chat', async () => {
    // A bot that decides nothing inline, as in the middle of a burst (INLINE_DECISIONS), on the same adapter and chat layer.
    const burstHttp = createHttpServer({ log: testLogger(), checks: { pool: db.pool } });
    const burstBot = new TeamsBot({ adapter: t.adapter.adapter, core: () => h.chat.core, log: testLogger(), inlineDecisions: 0 });
    burstHttp.mount('POST', '/api/messages', burstBot.handle);
    const burstUrl = `http://127.0.0.1:${(await burstHttp.listen(0, '127.0.0.1')).port}`;
    const burstClick = async (from: TeamsUser, conversation: TeamsConversation, data: Record<string, unknown>, replyToId?: string) => {
      const activity = t.act.invoke({ verb: 'approval.approve', data, from, tenant: TENANT, conversation, ...(replyToId ? { replyToId } : {}) });
      const res = await sendActivity(burstUrl, activity, t.identity.mint({ serviceUrl: String(activity.serviceUrl) }));
      expect(res.status).toBe(200);
      return res.body as { statusCode: number; type: string; value: unknown };
    };
    try {
      const { run, approvalId } = await shipRun('5.5');
      const dm = await dmCard(RM1, approvalId);
      const answer = await burstClick(RM1, { id: dm.conversationId, conversationType: 'personal' }, { approvalId }, dm.activityId);
      expect(answer).toEqual({ statusCode: 200, type: 'application/vnd.microsoft.activity.message', value: expect.stringContaining('approval is recorded') });

      await intentsCarriedOut(db.pool);
      await waitForRun(h.runtime, run.id, 'succeeded');
      const { rows } = await db.pool.query('SELECT principal, via FROM tollgate.approval_decisions WHERE approval_id = $1', [approvalId]);
      expect(rows).toEqual([{ principal: principal(RM1), via: 'teams' }]);
      await poll(() => !buttons(dm.card()).includes('approval.approve') && cardText(dm.card()).includes('Approved'), { message: 'the DM card resolved' });

      // Someone the policy does not name: nothing recorded, and told why where only they see it.
      const other = await shipRun('5.6');
      const before = cardsIn(personal(OPS).id).length;
      expect((await burstClick(OPS, personal(OPS), { approvalId: other.approvalId })).type).toBe('application/vnd.microsoft.activity.message');
      await intentsCarriedOut(db.pool);
      await poll(
        () =>
          cardsIn(personal(OPS).id)
            .slice(before)
            .some((a) => /not allowed/i.test(cardText(cardOfActivity(a.activity)))),
        {
          message: "the refusal in the clicker's personal chat",
        },
      );
      expect((await db.pool.query('SELECT 1 FROM tollgate.approval_decisions WHERE approval_id = $1', [other.approvalId])).rowCount).toBe(0);
      expect((await h.runtime.getRun(other.run.id)).run.status).toBe('waiting');
      await h.runtime.cancel(other.run.id, null);
    } finally {
      await burstHttp.close();
    }
  });

  it('`approvals` in the personal scope lists what waits for the person', async () => {
    const { run, approvalId } = await shipRun('6.0');
    const conv = personal(RM1);
    const before = cardsIn(conv.id).length;
    await say(RM1, conv, 'approvals');
    const list = await poll(
      () =>
        cardsIn(conv.id)
          .slice(before)
          .map((a) => cardOfActivity(a.activity))
          .find((c) => cardText(c).includes(approvalId)),
      { message: 'the list' },
    );
    expect(buttons(list)).toContain('approval.approve');
    await h.runtime.cancel(run.id, null);
  });
});

describe('run actions', () => {
  it('Retry on a failed run, by an operator, resumes it; the requester gets the same button and an outsider is refused', async () => {
    failing = true;
    const conv = personal(REQ);
    const run = await startRun(REQ, conv, 'run flaky');
    await waitForRun(h.runtime, run.id, 'failed');
    const posted = await poll(
      () => cardsIn(conv.id).find((a) => cardText(cardOfActivity(a.activity)).includes(run.id) && buttons(cardOfActivity(a.activity)).includes('run.retry')),
      { message: 'the failed card with Retry' },
    );

    const refused = await click(RM1, conv, 'run.retry', { runId: run.id }, { replyToId: posted.id });
    expect(cardText(refused)).toContain('or an operator');
    expect((await h.runtime.getRun(run.id)).run.status).toBe('failed');

    failing = false;
    const retried = await click(OPS, conv, 'run.retry', { runId: run.id }, { replyToId: posted.id });
    expect(cardText(retried)).toContain('Retrying');
    await waitForRun(h.runtime, run.id, 'succeeded');
    await poll(() => cardText(cardOfActivity(t.connector.activity(conv.id, posted.id)!.activity)).includes('Succeeded'), {
      message: 'the card updated in place',
    });
  });
});

describe('authentication', () => {
  const refusals: [string, (serviceUrl: string) => { token?: string | null; mint?: Record<string, unknown> }][] = [
    ['no token', () => ({ token: null })],
    ['wrong audience', () => ({ mint: { audience: 'someone-else' } })],
    ['wrong issuer', () => ({ mint: { issuer: 'https://evil.example/issuer' } })],
    ['expired', () => ({ mint: { expired: true } })],
    ['unknown signing key', () => ({ mint: { unknownKid: true } })],
    ['forged signature', () => ({ mint: { forgedSignature: true } })],
    ['alg none', () => ({ mint: { algNone: true } })],
    ['HS256 with the public key', () => ({ mint: { algHs256: true } })],
    ['nbf in the future', () => ({ mint: { notYetValid: true } })],
    ['serviceurl mismatch', () => ({ mint: { serviceUrl: 'https://smba.evil.example/' } })],
  ];
  for (const [what, opts] of refusals) {
    it(`${what}: 401, nothing recorded, nothing sent`, async () => {
      const conv = personal(REQ);
      const activity = t.act.message({ text: `run steps n=1`, from: REQ, tenant: TENANT, conversation: conv });
      const calls = t.connector.calls.length;
      const counts = async () =>
        (
          await db.pool.query<{ n: string }>(
            `SELECT (SELECT count(*) FROM tollgate.runs) + (SELECT count(*) FROM tollgate.chat_delivery_keys) + (SELECT count(*) FROM tollgate.chat_messages) AS n`,
          )
        ).rows[0]!.n;
      const before = await counts();
      const res = await t.send(activity, opts(String(activity.serviceUrl)));
      expect(res.status).toBe(401);
      expect(await counts()).toBe(before);
      expect(t.connector.calls.length).toBe(calls);
    });
  }

  it('a token that passed is taken again only for the same service URL, and only as it was signed', async () => {
    const conv = personal(REQ);
    const since = (await db.pool.query<{ now: Date }>('SELECT now()')).rows[0]!.now;
    const runs = async () => (await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM tollgate.runs`)).rows[0]!.n;
    const first = t.act.message({ text: `run steps n=1`, from: REQ, tenant: TENANT, conversation: conv });
    const token = t.identity.mint({ serviceUrl: String(first.serviceUrl) });
    expect((await t.send(first, { token })).status).toBe(200);
    expect((await t.send(t.act.message({ text: `run steps n=1`, from: REQ, tenant: TENANT, conversation: conv }), { token })).status).toBe(200);
    const before = await runs();
    // The same token, now naming another Bot Connector: botbuilder's serviceurl check still applies.
    const elsewhere = { ...t.act.message({ text: `run steps n=1`, from: REQ, tenant: TENANT, conversation: conv }), serviceUrl: 'https://smba.evil.example/' };
    expect((await t.send(elsewhere, { token })).status).toBe(401);
    // The same token with its signature altered is another token, checked afresh.
    const [head, body, sig] = token.split('.');
    const altered = `${head}.${body}.${sig!.startsWith('A') ? 'B' : 'A'}${sig!.slice(1)}`;
    expect((await t.send(t.act.message({ text: `run steps n=1`, from: REQ, tenant: TENANT, conversation: conv }), { token: altered })).status).toBe(401);
    expect(await runs()).toBe(before);
    await poll(
      async () =>
        (await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM tollgate.runs WHERE status <> 'succeeded' AND created_at >= $1`, [since])).rows[0]!.n ===
        '0',
      {
        message: 'the runs it started finished',
      },
    );
  });

  it('with Teams unconfigured, /api/messages answers 401 saying what to set', async () => {
    const app = await startApp({
      config: loadConfig({ DATABASE_URL: db.url, ...TEST_AUDIT_ENV, PORT: '0', LOG_LEVEL: 'silent' }),
      log: testLogger(),
      mode: 'server',
    });
    try {
      const res = await fetch(`${app.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"message"}' });
      expect(res.status).toBe(401);
      expect(JSON.stringify(await res.json())).toContain('MicrosoftAppId');
    } finally {
      await app.stop();
    }
  });

  it('with TEAMS_ALLOW_UNAUTHENTICATED=true and no app id (the Emulator), a message without a token is taken', async () => {
    const env = { DATABASE_URL: db.url, ...TEST_AUDIT_ENV, PORT: '0', LOG_LEVEL: 'silent', TEAMS_ALLOW_UNAUTHENTICATED: 'true' };
    const app = await startApp({ config: loadConfig(env), log: testLogger(), mode: 'server' });
    try {
      const conv = { id: 'a:emulator-chat', conversationType: 'personal' as const };
      const activity = t.act.message({ text: 'help', from: REQ, tenant: TENANT, conversation: conv });
      const res = await fetch(`${app.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
      expect(res.status).toBe(200);
      const { rows } = await db.pool.query(`SELECT 1 FROM tollgate.chat_messages WHERE platform = 'teams' AND conversation = $1 AND kind = 'reply'`, [conv.id]);
      expect(rows).toHaveLength(1);
    } finally {
      await app.stop();
    }
  });
});

describe('delivery', () => {
  it("five 429s in a row on a card's first updates: the card is still correct in the end", async () => {
    const conv = personal(REQ);
    t.connector.failNext(5, { status: 429, retryAfter: 1, operation: 'updateActivity', conversationId: conv.id });
    const run = await startRun(REQ, conv, 'run steps n=6');
    await waitForRun(h.runtime, run.id, 'succeeded');
    const card = await poll(
      () =>
        cardsIn(conv.id).find(
          (a) => a.activity.summary && cardText(cardOfActivity(a.activity)).includes(run.id) && cardText(cardOfActivity(a.activity)).includes('Succeeded'),
        ),
      { message: 'the final card after the 429s', timeoutMs: 60_000 },
    );
    expect(cardText(cardOfActivity(card.activity))).toContain('step 6');
    expect(t.connector.calls.filter((c) => c.operation === 'updateActivity' && c.conversationId === conv.id && c.status === 429)).toHaveLength(5);
    expect(cardsIn(conv.id).filter((a) => cardText(cardOfActivity(a.activity)).includes(run.id))).toHaveLength(1);
  });

  it('a 40-step run card, and every card the bot sent in this file, parses as an Adaptive Card 1.5 under 28 KB', async () => {
    const conv = personal(REQ);
    const run = await startRun(REQ, conv, 'run steps n=40');
    await waitForRun(h.runtime, run.id, 'succeeded');
    await poll(
      () => cardsIn(conv.id).some((a) => cardText(cardOfActivity(a.activity)).includes(run.id) && cardText(cardOfActivity(a.activity)).includes('Succeeded')),
      { message: 'the 40-step card' },
    );
    const sent = t.connector.calls.filter(
      (c) => (c.operation === 'sendToConversation' || c.operation === 'replyToActivity' || c.operation === 'updateActivity') && c.status < 300,
    );
    expect(sent.length).toBeGreaterThan(20);
    for (const call of sent) {
      const card = cardOfActivity(call.body as Record<string, unknown>);
      expect(card.version).toBe('1.5');
      expect(parse(card).issues).toEqual([]);
      expect(size(card)).toBeLessThan(28 * 1024);
    }
  });
});
