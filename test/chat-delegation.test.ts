/**
 * Delegation from chat, end to end over the platforms' real HTTP surfaces: signed Slack requests
 * into `POST /slack/events` (slash command, mention, clicks) and JWT-signed Teams activities into
 * `POST /api/messages`, the real Bolt app and botbuilder adapter, a real Graphile worker and the
 * Slack and Bot Connector fakes, on a test database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { purchaseOrderWorkflow } from '../src/workflows/purchase-order.ts';
import type { RunRow } from '../src/db/queries/runs.ts';
import { blockAction, eventCallback, ids, slashCommand } from './fakes/slack/requests.ts';
import type { FakeMessage } from './fakes/slack/server.ts';
import type { TeamsConversation, TeamsUser } from './fakes/teams/index.ts';
import type { AdaptiveCard } from '../bots/teams/cards.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { waitForRun } from './helpers/runtime.ts';
import { blocksText, startSlackHarness, type SlackHarness } from './helpers/slack.ts';
import type { TeamsParts } from './helpers/teams.ts';
import { poll } from './helpers/poll.ts';
import { commandTextFor, messageCommandText } from '../bots/slack/identity.ts';

const TEAM = 'T1';
const ALICE = 'UALICE01'; // asks for purchase orders
const FIN1 = 'UFIN0001';
const FIN2 = 'UFIN0002';
const DORA = 'UDORA001'; // not in finance: FIN1's delegate
const p = (u: string) => `slack:${TEAM}:${u}`;

const TENANT = 'tenant-contoso';
const RANA = { id: '29:rana', aadObjectId: '7f3c2a10-0000-4000-8000-00000000aaaa', name: 'Rana Release' };
const TOM = { id: '29:tom', aadObjectId: '7f3c2a10-0000-4000-8000-00000000bbbb', name: 'Tom Stand-in' };

const project = parseProjectConfig({
  groups: { finance: [p(FIN1), p(FIN2), `teams:tenant-contoso:7f3c2a10-0000-4000-8000-00000000aaaa`] },
  workflows: { 'purchase-order': { approvalThreshold: 1000 } },
});

let db: TestDb;
let h: SlackHarness;
let t: TeamsParts;

beforeAll(async () => {
  db = await createTestDb();
  h = await startSlackHarness(db, [purchaseOrderWorkflow(project)], { project, teams: true });
  t = h.teams!;
});
afterAll(async () => {
  await h?.stop();
  await db?.close();
});

/** `days` from now, written YYYY-MM-DD. */
const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);
const dmChannel = (user: string) => `D${user}`; // what the fake's conversations.open answers
const hasAction = (m: FakeMessage, actionId: string) => blocksText(m.blocks).includes(`"action_id":"${actionId}"`);

async function slash(text: string, user: string, channel = `C${ids.event().slice(2, 12)}`) {
  const res = await h.send(slashCommand({ text, userId: user, teamId: TEAM, channelId: channel }));
  expect(res.status).toBe(200);
  return { channel, text: (res.json() as { text: string }).text, raw: JSON.stringify(res.json()) };
}

async function delegationsOf(delegator: string) {
  const { rows } = await db.pool.query<{ id: string; delegate: string; ends_at: Date; via: string; revoked_at: Date | null }>(
    'SELECT id, delegate, ends_at, via, revoked_at FROM tollgate.delegations WHERE delegator = $1 ORDER BY created_at',
    [delegator],
  );
  return rows;
}

async function startOrder(requester: string): Promise<{ run: RunRow; channel: string; approvalId: string }> {
  const { channel, text } = await slash('run purchase-order vendor=Acme amount=5000 currency=EUR reason="new laptops"', requester);
  const { rows } = await db.pool.query<RunRow>(`SELECT * FROM tollgate.runs WHERE origin->>'conversation' = $1`, [channel]);
  const run = rows[0];
  if (!run) throw new Error(`no run started: ${text}`);
  await waitForRun(h.runtime, run.id, 'waiting');
  const approvalId = await poll(
    async () => (await db.pool.query<{ id: string }>(`SELECT id FROM tollgate.approvals WHERE run_id = $1 AND status = 'pending'`, [run.id])).rows[0]?.id,
    { message: 'the pending approval' },
  );
  return { run, channel, approvalId };
}

describe('delegation over Slack', () => {
  it('`/tollgate delegate @someone until <date>` records the delegation and answers; an unreadable date is answered with the format and records nothing', async () => {
    const day = inDays(20);
    const res = await slash(`delegate <@${DORA}|dora> until ${day}`, FIN1);
    expect(res.text).toContain(`Delegated: ${p(DORA)} may decide in your place until the end of ${day} (UTC)`);
    const rows = await delegationsOf(p(FIN1));
    expect(rows).toEqual([expect.objectContaining({ delegate: p(DORA), via: 'slack', revoked_at: null })]);
    expect(rows[0]?.ends_at.toISOString()).toBe(new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString());
    const audited = await db.pool.query(`SELECT actor, payload FROM tollgate.events WHERE type = 'delegation.created' AND payload->>'delegationId' = $1`, [
      rows[0]?.id,
    ]);
    expect(audited.rows[0]).toMatchObject({ actor: { platform: 'slack', tenant: TEAM, user: FIN1 }, payload: { delegator: p(FIN1), delegate: p(DORA) } });

    const bad = await slash(`delegate <@${DORA}> until 2026-13-40`, FIN2);
    expect(bad.text).toContain('"2026-13-40" is not a date: write the last day of the delegation as YYYY-MM-DD, e.g. until 2026-12-24');
    expect(bad.text).toContain('TG_DELEGATION_INVALID');
    const self = await slash(`delegate <@${FIN2}> until ${day}`, FIN2);
    expect(self.text).toContain(`You cannot delegate to yourself (${p(FIN2)})`);
    const far = await slash(`delegate <@${DORA}> until ${inDays(120)}`, FIN2);
    expect(far.text).toContain('A delegation lasts at most 90 days');
    expect(await delegationsOf(p(FIN2))).toEqual([]);

    const listed = await slash('delegate', DORA);
    expect(listed.text).toContain(`${p(DORA)} decides for ${p(FIN1)} until the end of ${day} (UTC)`);
  });

  it("a delegate who is the requester is refused with the code and a sentence; the other delegate's decision resolves the gate on behalf of the approver, and every copy says so", async () => {
    // FIN1 → Dora (from the test above), FIN2 → Alice, who then asks for the order herself.
    await slash(`delegate <@${ALICE}> until ${inDays(5)}`, FIN2);
    const { run, channel, approvalId } = await startOrder(ALICE);

    // Dora gets the approval's DM with its buttons; Alice, barred, gets none.
    const doraDm = await poll(() => h.fake.messagesIn(dmChannel(DORA)).find((m) => !m.thread_ts && blocksText(m.blocks).includes(approvalId)), {
      message: "Dora's DM",
    });
    expect(hasAction(doraDm, 'approval.approve')).toBe(true);
    expect(blocksText(doraDm.blocks)).toContain(`delegates: ${p(DORA)} for ${p(FIN1)}`);
    expect(h.fake.messagesIn(dmChannel(ALICE))).toHaveLength(0);
    // `/tollgate approvals` lists it for Dora (who may decide it), not for Alice (who may not approve it).
    expect((await slash('approvals', DORA)).raw).toContain(approvalId);
    expect((await slash('approvals', ALICE)).raw).not.toContain(approvalId);

    // Alice approves from the run message: refused, explained to her alone, nothing recorded.
    const runMsg = await poll(() => h.fake.messagesIn(channel).find((m) => !m.thread_ts && hasAction(m, 'approval.approve')), { message: 'the run message' });
    await h.send(blockAction({ userId: ALICE, teamId: TEAM, actionId: 'approval.approve', value: approvalId, channelId: channel, messageTs: runMsg.ts }));
    const refusal = await poll(() => h.fake.callsTo('chat.postEphemeral').find((c) => c.args.user === ALICE && c.args.channel === channel), {
      message: "Alice's refusal",
    });
    const said = String(refusal.args.text);
    expect(said).toContain('TG_DELEGATION_OWN_REQUEST');
    expect(said).toContain(`Not allowed: ${p(ALICE)} requested this run; standing in for ${p(FIN2)} by delegation does not change that`);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM tollgate.approval_decisions WHERE approval_id = $1', [approvalId])).rows[0]).toEqual({ n: 0 });
    expect((await h.runtime.getRun(run.id)).run.status).toBe('waiting');

    // Dora approves from her DM: the gate resolves on behalf of FIN1.
    await h.send(
      blockAction({ userId: DORA, teamId: TEAM, actionId: 'approval.approve', value: approvalId, channelId: dmChannel(DORA), messageTs: doraDm.ts }),
    );
    await waitForRun(h.runtime, run.id, 'succeeded');
    const { rows } = await db.pool.query('SELECT principal, on_behalf_of, via FROM tollgate.approval_decisions WHERE approval_id = $1', [approvalId]);
    expect(rows).toEqual([{ principal: p(DORA), on_behalf_of: p(FIN1), via: 'slack' }]);
    const ev = await db.pool.query(`SELECT payload FROM tollgate.events WHERE run_id = $1 AND type = 'approval.decided'`, [run.id]);
    expect(ev.rows[0]?.payload).toMatchObject({ decision: 'approve', onBehalfOf: p(FIN1), via: 'slack' });
    await poll(
      () => {
        const m = h.fake.messagesIn(channel).find((x) => x.ts === runMsg.ts);
        return m && blocksText(m.blocks).includes(`*Approved* by <@${DORA}> on behalf of <@${FIN1}>`);
      },
      { message: 'the run message to say Dora approved on behalf of FIN1' },
    );
  });

  it('a mention reads `delegate off` and ends the delegations the sender gave', async () => {
    const channel = `C${ids.event().slice(2, 12)}`;
    await h.send(
      eventCallback({
        userId: FIN1,
        teamId: TEAM,
        event: {
          type: 'app_mention',
          user: FIN1,
          text: `<@${h.fake.botUserId}> delegate off`,
          ts: '1700000900.000100',
          channel,
          event_ts: '1700000900.000100',
        },
      }),
    );
    const reply = await poll(() => h.fake.messagesIn(channel).find((m) => m.thread_ts === '1700000900.000100'), { message: 'the reply in the thread' });
    expect(blocksText(reply.blocks) + (reply.text ?? '')).toContain(`Ended: ${p(DORA)} decides for ${p(FIN1)}`);
    expect((await delegationsOf(p(FIN1))).every((d) => d.revoked_at !== null)).toBe(true);
  });
});

describe("Slack's escaped text", () => {
  it('a delegate command reads mentions as principals of the workspace; other commands get what was typed', () => {
    expect(commandTextFor('delegate <@U0DORA01|dora> until 2026-12-24', 'T1')).toBe('delegate slack:T1:U0DORA01 until 2026-12-24');
    expect(messageCommandText('<@UBOT0001> delegate <@U0DORA01> until 2026-12-24', 'E1')).toBe('delegate slack:E1:U0DORA01 until 2026-12-24');
    expect(commandTextFor('run deploy service=api url=<https://example.com/x|example.com/x> note=<@U1|ann> in <#C1|ops>', 'T1')).toBe(
      'run deploy service=api url=https://example.com/x note=@ann in #ops',
    );
    expect(messageCommandText('<@UBOT0001> run demo name=<@U1>', 'T1')).toBe('run demo name=');
  });
});

describe('delegation over Teams', () => {
  const personal = (u: TeamsUser): TeamsConversation => ({ id: `a:personal-${u.aadObjectId}`, conversationType: 'personal' });

  async function say(from: TeamsUser, text: string, entities: Record<string, unknown>[] = []) {
    const conv = personal(from);
    const before = t.connector.activitiesIn(conv.id).length;
    const activity = t.act.message({ text, from, tenant: TENANT, conversation: conv });
    (activity.entities as unknown[]).push(...entities);
    const res = await t.send(activity);
    expect(res.status).toBe(200);
    return poll(
      () => {
        const sent = t.connector.activitiesIn(conv.id).map((a) => JSON.stringify(a.activity));
        return sent.length > before && sent.slice(before).join('\n');
      },
      { message: 'the reply' },
    );
  }

  it('the same words to the Teams bot, with a mention, record the delegation to the person mentioned; a mention without an AAD id asks for the principal', async () => {
    const day = inDays(7);
    const mention = { type: 'mention', text: '<at>Tom Stand-in</at>', mentioned: { id: TOM.id, name: TOM.name, aadObjectId: TOM.aadObjectId } };
    const reply = await say(RANA, `delegate <at>Tom Stand-in</at> until ${day}`, [mention]);
    const tom = `teams:${TENANT}:${TOM.aadObjectId}`;
    expect(reply).toContain(`Delegated: ${tom} may decide in your place until the end of ${day} (UTC)`);
    expect(await delegationsOf(`teams:${TENANT}:${RANA.aadObjectId}`)).toEqual([expect.objectContaining({ delegate: tom, via: 'teams', revoked_at: null })]);

    const who = { ...TOM, id: '29:nobody', aadObjectId: '7f3c2a10-0000-4000-8000-00000000cccc', name: 'Nemo' };
    const unresolved = { type: 'mention', text: '<at>Nemo</at>', mentioned: { id: '29:nemo-only', name: 'Nemo' } };
    const asked = await say(who, `delegate <at>Nemo</at> until ${day}`, [unresolved]);
    expect(asked).toContain('\\"Nemo\\" is not someone Tollgate can delegate to');
    expect(asked).toContain('teams:<tenant-id>:<aad-object-id>');
    // Written out, the principal is accepted.
    const written = await say({ ...who, id: '29:nobody2' }, `delegate ${tom} until ${day}`);
    expect(written).toContain(`Delegated: ${tom}`);
  });

  it("the delegate's card offers Approve; their Action.Execute resolves the gate on behalf of the Teams approver", async () => {
    // Rana (finance, Teams) delegated to Tom above; Alice asks in Slack.
    const { run, approvalId } = await startOrder(ALICE);
    const tomCard = await poll(
      () => {
        for (const c of t.connector.conversations.filter((x) =>
          (x.parameters.members as { aadObjectId?: string }[]).some((m) => m.aadObjectId === TOM.aadObjectId),
        )) {
          const found = t.connector.activitiesIn(c.id).find((a) => JSON.stringify(a.activity).includes(approvalId));
          if (found) return { conversationId: c.id, activityId: found.id, text: JSON.stringify(found.activity) };
        }
        return undefined;
      },
      { message: "Tom's approval card" },
    );
    expect(tomCard.text).toContain('approval.approve');
    const res = await t.send(
      t.act.invoke({
        verb: 'approval.approve',
        data: { approvalId },
        from: TOM,
        tenant: TENANT,
        conversation: { id: tomCard.conversationId, conversationType: 'personal' },
        replyToId: tomCard.activityId,
      }),
    );
    expect(res.status).toBe(200);
    const card = JSON.stringify((res.body as { value: AdaptiveCard }).value);
    expect(card).toContain('Recorded: you approved');
    expect(card).toContain(`on behalf of`);
    await waitForRun(h.runtime, run.id, 'succeeded');
    const rana = `teams:${TENANT}:${RANA.aadObjectId}`;
    const { rows } = await db.pool.query('SELECT principal, on_behalf_of, via FROM tollgate.approval_decisions WHERE approval_id = $1', [approvalId]);
    expect(rows).toEqual([{ principal: `teams:${TENANT}:${TOM.aadObjectId}`, on_behalf_of: rana, via: 'teams' }]);
  });
});
