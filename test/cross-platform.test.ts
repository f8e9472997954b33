/**
 * One approval across Slack and Teams: a purchase order requested in Slack, with a policy listing
 * a Slack and a Teams approver and a quorum of 2. Every copy on both platforms (the Slack run
 * message, its thread copy, the Slack DM, the Teams 1:1 card) shows the live tally, and every copy
 * ends naming both decisions, without buttons. Slack's App Home and the Teams personal scope list
 * the same pending approvals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executeActions, type AdaptiveCard } from '../bots/teams/cards.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import type { RunRow } from '../src/db/queries/runs.ts';
import { purchaseOrderWorkflow } from '../src/workflows/purchase-order.ts';
import { blockAction, slashCommand } from './fakes/slack/requests.ts';
import type { FakeMessage } from './fakes/slack/server.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { waitForRun } from './helpers/runtime.ts';
import { blocksText, startSlackHarness, type SlackHarness } from './helpers/slack.ts';
import { poll } from './helpers/poll.ts';

const TEAM = 'T1';
const TENANT = 'tenant-contoso';
const REQUESTER = 'UREQ0001';
const SLACK_APPROVER = 'UFIN0001';
const TEAMS_APPROVER = { id: '29:fin2', aadObjectId: 'aad-fin2', name: 'Fay Finance' };
const CHANNEL = 'CPURCHASE1';

const project = parseProjectConfig({
  groups: { finance: [`slack:${TEAM}:${SLACK_APPROVER}`, `teams:${TENANT}:${TEAMS_APPROVER.aadObjectId}`] },
  workflows: { 'purchase-order': { approvalThreshold: 1000, quorum: 2 } },
});

let db: TestDb;
let h: SlackHarness;

beforeAll(async () => {
  db = await createTestDb();
  h = await startSlackHarness(db, [purchaseOrderWorkflow(project)], { project, teams: true });
});
afterAll(async () => {
  await h?.stop();
  await db?.close();
});

const teams = () => h.teams!;
const cardOf = (a: Record<string, unknown>): AdaptiveCard => (a.attachments as { content: AdaptiveCard }[])[0]!.content;
const hasSlackButtons = (m: FakeMessage) => blocksText(m.blocks).includes('"action_id":"approval.approve"');
const hasTeamsButtons = (c: AdaptiveCard) => executeActions(c).some((a) => a.verb === 'approval.approve');

/** The Teams approver's 1:1 card for this approval (found by the approval id its buttons carry), as it stands now. */
function teamsCopy(approvalId: string): { conversationId: string; id: string; card: AdaptiveCard } | undefined {
  for (const c of teams().connector.conversations) {
    for (const a of teams().connector.activitiesIn(c.id)) {
      if (Array.isArray(a.activity.attachments) && JSON.stringify(a.activity).includes(approvalId))
        return { conversationId: c.id, id: a.id, card: cardOf(a.activity) };
    }
  }
  return undefined;
}

/** The Slack copies: the run message and its thread copy in the channel, and the approver's DM. */
function slackCopies(approvalId: string): FakeMessage[] {
  const inChannel = h.fake.messagesIn(CHANNEL).filter((m) => blocksText(m.blocks).includes(approvalId));
  const dm = h.fake.messagesIn(`D${SLACK_APPROVER}`).filter((m) => !m.thread_ts && blocksText(m.blocks).includes(approvalId));
  return [...inChannel, ...dm];
}

describe('a quorum of one Slack and one Teams approver', () => {
  it('every copy on both platforms shows the live tally, and ends naming both decisions without buttons', async () => {
    await h.send(
      slashCommand({
        text: 'run purchase-order vendor=Acme amount=5200 currency=EUR reason="40 laptops"',
        userId: REQUESTER,
        teamId: TEAM,
        channelId: CHANNEL,
      }),
    );
    const run = await poll(async () => (await db.pool.query<RunRow>(`SELECT * FROM tollgate.runs WHERE origin->>'conversation' = $1`, [CHANNEL])).rows[0], {
      message: 'the run',
    });
    await waitForRun(h.runtime, run.id, 'waiting');
    const approvalId = await poll(
      async () => (await db.pool.query<{ id: string }>('SELECT id FROM tollgate.approvals WHERE run_id = $1', [run.id])).rows[0]?.id,
      { message: 'the approval' },
    );

    // Before any decision: the run message, the thread copy, the Slack DM and the Teams card.
    await poll(() => slackCopies(approvalId).length === 3 && teamsCopy(approvalId), { message: 'three Slack copies and the Teams card' });
    for (const m of slackCopies(approvalId)) expect(blocksText(m.blocks)).toContain('So far: no approvals (0 of 2)');
    expect(JSON.stringify(teamsCopy(approvalId)!.card)).toContain('So far: no approvals (0 of 2)');
    expect(hasTeamsButtons(teamsCopy(approvalId)!.card)).toBe(true);

    // The Slack approver approves from their DM: every copy on both platforms shows 1 of 2.
    const dm = slackCopies(approvalId).find((m) => m.channel === `D${SLACK_APPROVER}`)!;
    await h.send(
      blockAction({ userId: SLACK_APPROVER, teamId: TEAM, actionId: 'approval.approve', value: approvalId, channelId: dm.channel, messageTs: dm.ts }),
    );
    await poll(
      () =>
        slackCopies(approvalId).every((m) => blocksText(m.blocks).includes(`So far: 1 of 2 approvals (approved by <@${SLACK_APPROVER}>`)) &&
        JSON.stringify(teamsCopy(approvalId)?.card).includes(`So far: 1 of 2 approvals (approved by slack:${TEAM}:${SLACK_APPROVER}`),
      { message: 'every copy on both platforms to show 1 of 2' },
    );

    // The Teams approver approves on their card: the gate resolves and the run goes on.
    const copy = teamsCopy(approvalId)!;
    const res = await teams().send(
      teams().act.invoke({
        verb: 'approval.approve',
        data: { approvalId },
        from: TEAMS_APPROVER,
        tenant: TENANT,
        conversation: { id: copy.conversationId, conversationType: 'personal' },
        replyToId: copy.id,
      }),
    );
    expect(res.status).toBe(200);
    expect(JSON.stringify(res.body)).toContain('Recorded: you approved');
    const done = await waitForRun(h.runtime, run.id, ['succeeded', 'failed', 'compensated']);
    expect(done.status).toBe('succeeded');

    // The Teams approver by the name Teams sent (from.name), with their platform; the Slack one by mention.
    const teamsName = `${TEAMS_APPROVER.name} \\(Teams\\)`;
    await poll(
      () =>
        slackCopies(approvalId).every(
          (m) => new RegExp(`\\*Approved\\* by <@${SLACK_APPROVER}> [^,]*, ${teamsName}`).test(blocksText(m.blocks)) && !hasSlackButtons(m),
        ) &&
        (() => {
          const card = cardOf(teams().connector.activity(copy.conversationId, copy.id)!.activity);
          return (
            new RegExp(`\\*\\*Approved\\*\\* by slack:${TEAM}:${SLACK_APPROVER} \\{\\{DATE[^}]*\\}\\} \\{\\{TIME[^}]*\\}\\}, ${teamsName}`).test(
              JSON.stringify(card),
            ) && !hasTeamsButtons(card)
          );
        })(),
      { message: 'every copy on both platforms to name both approvers, without buttons' },
    );
  });

  it("Slack's App Home and the Teams personal scope list the same pending approvals", async () => {
    await h.send(
      slashCommand({
        text: 'run purchase-order vendor=Initech amount=9000 currency=EUR reason=servers',
        userId: REQUESTER,
        teamId: TEAM,
        channelId: 'CPURCHASE2',
      }),
    );
    const run = await poll(async () => (await db.pool.query<RunRow>(`SELECT * FROM tollgate.runs WHERE origin->>'conversation' = 'CPURCHASE2'`)).rows[0], {
      message: 'the run',
    });
    await waitForRun(h.runtime, run.id, 'waiting');
    const approvalId = await poll(
      async () => (await db.pool.query<{ id: string }>('SELECT id FROM tollgate.approvals WHERE run_id = $1', [run.id])).rows[0]?.id,
      { message: 'the approval' },
    );

    const home = await poll(
      () =>
        h.fake
          .callsTo('views.publish')
          .filter((c) => c.args.user_id === SLACK_APPROVER)
          .find((c) => JSON.stringify(c.args.view).includes(approvalId)),
      { message: "the Slack approver's App Home listing the approval" },
    );
    expect(JSON.stringify(home.args.view)).toContain('"action_id":"approval.approve"');

    const personal = { id: 'a:personal-fin2', conversationType: 'personal' as const };
    const asked = teams().act.message({ text: 'approvals', from: TEAMS_APPROVER, tenant: TENANT, conversation: personal });
    expect((await teams().send(asked)).status).toBe(200);
    const list = await poll(
      () =>
        teams()
          .connector.activitiesIn(personal.id)
          .map((a) => cardOf(a.activity))
          .find((c) => JSON.stringify(c).includes(approvalId)),
      { message: "the Teams approver's list" },
    );
    expect(hasTeamsButtons(list)).toBe(true);
    // Both list exactly the pending approvals that wait for that person: this one (the first was resolved).
    const listed = (s: string) => [...new Set(s.match(/apr_[0-9a-z]+/g) ?? [])].sort();
    expect(listed(JSON.stringify(list))).toEqual([approvalId]);
    expect(listed(JSON.stringify(home.args.view))).toEqual([approvalId]);
    await h.runtime.cancel(run.id, null);
  });
});
