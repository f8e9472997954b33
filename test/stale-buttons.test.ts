/**
 * Stale buttons (issue 21 item 3), end to end over Slack's HTTP surface (signed requests, the fake
 * Slack Web API) and Teams' (JWT-signed `Action.Execute` invokes, the fake Bot Connector), on one
 * chat layer: every run message and approval copy carries the revision of the view it shows; a
 * click on an outdated copy whose action no longer holds is answered with what happened since and
 * the state now, the copy that was clicked is redrawn, and nothing runs. A click without a
 * revision (a message posted before this release) is carried out as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { executeActions, type AdaptiveCard } from '../bots/teams/cards.ts';
import type { ApprovalOptions } from '../src/approvals/types.ts';
import { NonRetriableError } from '../src/common/errors.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import type { RunRow } from '../src/db/queries/runs.ts';
import { defineWorkflow } from '../src/runtime/workflow.ts';
import { blockAction, ids, slashCommand } from './fakes/slack/requests.ts';
import type { FakeMessage } from './fakes/slack/server.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { poll } from './helpers/poll.ts';
import { waitForRun } from './helpers/runtime.ts';
import { blocksText, startSlackHarness, type SlackHarness } from './helpers/slack.ts';

const TEAM = 'T0001';
const TENANT = 'tenant-contoso';
const ALICE = 'UALICE01';
const FIN = 'UFIN0001';
const CFO = 'UCFO0001';
const TEAMS_OPS = { id: '29:ops', aadObjectId: 'aad-ops', name: 'Olga Ops' };
const TEAMS_CFO = { id: '29:cfo2', aadObjectId: 'aad-cfo2', name: 'Carl Cfo' };

const project = parseProjectConfig({
  operators: [`teams:${TENANT}:${TEAMS_OPS.aadObjectId}`],
  // The CFOs are in finance too: after the escalation they may still decide, so only the
  // version tells their click on the pre-escalation copy from a click on the current one.
  groups: {
    finance: [`slack:${TEAM}:${FIN}`, `slack:${TEAM}:${CFO}`, `teams:${TENANT}:${TEAMS_CFO.aadObjectId}`],
    cfo: [`slack:${TEAM}:${CFO}`, `teams:${TENANT}:${TEAMS_CFO.aadObjectId}`],
  },
});

/** Step bodies count their executions here, so tests can prove what ran again. */
const executions: Record<string, number> = {};

const brittle = defineWorkflow({
  name: 'brittle',
  version: 1,
  description: 'Two steps, then a third that always fails',
  input: z.object({}),
  run: async (ctx) => {
    const count = (k: string) => (executions[`${ctx.runId}:${k}`] = (executions[`${ctx.runId}:${k}`] ?? 0) + 1);
    await ctx.step('first', () => count('first'));
    await ctx.step('second', () => count('second'));
    return ctx.step('third', () => {
      count('third');
      throw new NonRetriableError('the third step is broken on purpose');
    });
  },
});

const gated = defineWorkflow({
  name: 'gated',
  version: 1,
  description: 'An approval by finance that escalates to the CFOs at its deadline',
  input: z.object({}),
  run: async (ctx) => {
    const options: ApprovalOptions = {
      policy: { groups: ['finance'] },
      summary: 'Pay the invoice',
      params: { invoice: 'INV-7' },
      timeout: '1h',
      onTimeout: { escalate: { groups: ['cfo'] }, timeout: '1h' },
    };
    const gate = await ctx.approval('sign-off', options);
    return ctx.step('pay', () => ({ paid: gate.approved }));
  },
});

/** `guarded`'s step after its gate waits here until the test releases it. */
const hold = { release: () => {}, opened: Promise.resolve() };

const guarded = defineWorkflow({
  name: 'guarded',
  version: 1,
  description: 'An approval by finance, then a step that waits until the test releases it',
  input: z.object({}),
  run: async (ctx) => {
    const gate = await ctx.approval('sign-off', { policy: { groups: ['finance'] }, summary: 'Ship it', params: { what: 'it' } });
    await ctx.step('ship', () => hold.opened);
    return gate.approved;
  },
});

let db: TestDb;
let h: SlackHarness;

beforeAll(async () => {
  db = await createTestDb();
  h = await startSlackHarness(db, [brittle, gated, guarded], { project, teams: true });
});
afterAll(async () => {
  hold.release();
  await h?.stop();
  await db?.close();
});

const teams = () => h.teams!;
const cardOf = (a: Record<string, unknown>): AdaptiveCard => (a.attachments as { content: AdaptiveCard }[])[0]!.content;

async function startBySlash(text: string, user = ALICE): Promise<{ run: RunRow; channel: string }> {
  const channel = `C${ids.event().slice(2, 12)}`;
  expect((await h.send(slashCommand({ text, userId: user, teamId: TEAM, channelId: channel }))).status).toBe(200);
  const run = await poll(async () => (await db.pool.query<RunRow>(`SELECT * FROM tollgate.runs WHERE origin->>'conversation' = $1`, [channel])).rows[0], {
    message: `the run of "${text}"`,
  });
  return { run, channel };
}

/** The value of a Slack button (by action id) in a message, if it has one. */
function buttonValue(m: FakeMessage | undefined, actionId: string): string | undefined {
  const blocks = (m?.blocks ?? []) as { elements?: { action_id?: string; value?: string }[] }[];
  return blocks.flatMap((b) => b.elements ?? []).find((e) => e.action_id === actionId)?.value;
}

const revisionOf = (value: string | undefined) => Number(value?.split('@')[1]);

async function count(sql: string, args: unknown[]): Promise<number> {
  return Number((await db.pool.query<{ n: string }>(sql, args)).rows[0]?.n);
}
const retries = (runId: string) => count(`SELECT count(*) AS n FROM tollgate.events WHERE run_id = $1 AND type = 'run.retried'`, [runId]);
/** The failed step's attempts, counted in the journal (a retry resets the step's own counter). */
const thirdAttempts = (runId: string) =>
  count(`SELECT count(*) AS n FROM tollgate.events WHERE run_id = $1 AND type = 'step.started' AND payload->>'step' = 'third'`, [runId]);

function ephemeralsTo(user: string, channel: string) {
  return h.fake.callsTo('chat.postEphemeral').filter((c) => c.args.user === user && c.args.channel === channel);
}
const updatesOf = (channel: string, ts: string) => h.fake.callsTo('chat.update').filter((c) => c.args.channel === channel && c.args.ts === ts);

function retryClick(user: string, value: string, channel: string, ts: string) {
  return h.send(blockAction({ userId: user, teamId: TEAM, actionId: 'run.retry', value, channelId: channel, messageTs: ts }));
}

/** A failed `brittle` run, its message with Retry, and that button's value. */
async function failedRun(): Promise<{ run: RunRow; channel: string; message: FakeMessage; value: string }> {
  const { run, channel } = await startBySlash('run brittle');
  await waitForRun(h.runtime, run.id, 'failed');
  const message = await poll(() => h.fake.messagesIn(channel).find((m) => buttonValue(m, 'run.retry')), { message: 'the failed run message with Retry' });
  return { run, channel, message, value: buttonValue(message, 'run.retry')! };
}

describe('Retry on an outdated copy', () => {
  it('after a retry, the old copy’s Retry is answered with what happened since, the copy is redrawn, and nothing runs again', async () => {
    const { run, channel, message, value: old } = await failedRun();
    // The button carries the run id and the view's revision.
    expect(old).toMatch(new RegExp(`^${run.id}@\\d+$`));

    // The first Retry goes ahead; the third step fails again and the message is redrawn with a newer revision.
    await retryClick(ALICE, old, channel, message.ts);
    expect(await retries(run.id)).toBe(1);
    await waitForRun(h.runtime, run.id, 'failed');
    const current = await poll(
      () => {
        const v = buttonValue(h.fake.message(channel, message.ts), 'run.retry');
        return v && v !== old && v;
      },
      { message: 'the run message redrawn with a newer revision' },
    );
    expect(revisionOf(current)).toBeGreaterThan(revisionOf(old));
    const attempts = await thirdAttempts(run.id);
    expect(attempts).toBe(2);
    const updates = updatesOf(channel, message.ts).length;

    // Retry on the old copy again: answered, redrawn, not retried.
    await retryClick(ALICE, old, channel, message.ts);
    const answer = await poll(() => ephemeralsTo(ALICE, channel).at(-1), { message: 'the answer to the clicker' });
    const said = blocksText(answer.args.blocks);
    expect(said).toContain('This message was out of date, so nothing was done.');
    expect(said).toContain(`Retried by <@${ALICE}> <!date^`);
    expect(said).toContain('Step third failed');
    expect(said).toContain('Now: failed at step third');
    expect(String(answer.args.text)).toContain('out of date');
    // The copy that was clicked is updated (the outbox redraws it even though it believed it current).
    await poll(() => updatesOf(channel, message.ts).length > updates, { message: 'a chat.update of the clicked copy' });
    expect(buttonValue(h.fake.message(channel, message.ts), 'run.retry')).toBe(current);
    // Nothing ran: one retry in the journal, the failed step attempted twice in all.
    expect(await retries(run.id)).toBe(1);
    expect(await thirdAttempts(run.id)).toBe(attempts);
    expect(executions[`${run.id}:third`]).toBe(2);
    expect((await h.runtime.getRun(run.id)).run.status).toBe('failed');

    // Retry on the current copy still works.
    await retryClick(ALICE, current, channel, message.ts);
    expect(await retries(run.id)).toBe(2);
    await waitForRun(h.runtime, run.id, 'failed');
    expect(await thirdAttempts(run.id)).toBe(3);
  });

  it('a Retry click without a version (a message posted before this release) is carried out as before', async () => {
    const { run, channel, message } = await failedRun();
    await retryClick(ALICE, run.id, channel, message.ts);
    expect(await retries(run.id)).toBe(1);
    await waitForRun(h.runtime, run.id, 'failed');
    expect(executions[`${run.id}:third`]).toBe(2);
    expect(ephemeralsTo(ALICE, channel)).toHaveLength(0);
  });

  it('the Slack and the Teams copy clicked at once retry once; then the old Teams card is answered with the redrawn card', async () => {
    const { run, channel, message, value } = await failedRun();
    const revision = revisionOf(value);
    const invoke = (v: number) =>
      teams().send(
        teams().act.invoke({
          verb: 'run.retry',
          data: { runId: run.id, v },
          from: TEAMS_OPS,
          tenant: TENANT,
          conversation: { id: 'a:personal-ops', conversationType: 'personal' },
        }),
      );
    const [, fromTeams] = await Promise.all([retryClick(ALICE, value, channel, message.ts), invoke(revision)]);
    expect(fromTeams.status).toBe(200);
    expect(await retries(run.id)).toBe(1);
    await waitForRun(h.runtime, run.id, 'failed');
    expect(executions[`${run.id}:third`]).toBe(2);
    // The clicker who lost the race was told their copy was out of date; the winner was not.
    const retriedBy = (
      await db.pool.query<{ actor: { platform: string } }>(`SELECT actor FROM tollgate.events WHERE run_id = $1 AND type = 'run.retried'`, [run.id])
    ).rows[0]?.actor.platform;
    const teamsOutdated = JSON.stringify(fromTeams.body).includes('This message was out of date');
    expect(teamsOutdated).toBe(retriedBy === 'slack');
    if (retriedBy === 'teams') {
      await poll(() => ephemeralsTo(ALICE, channel).some((c) => blocksText(c.args.blocks).includes('This message was out of date')), {
        message: 'the Slack clicker told their copy was out of date',
      });
    }

    // The old Teams card again: the answer is the run's card as it is now, with what happened since on top.
    const again = await invoke(revision);
    expect(again.status).toBe(200);
    const card = (again.body as { value: AdaptiveCard }).value;
    const text = JSON.stringify(card);
    expect(text).toContain('This message was out of date, so nothing was done.');
    expect(text).toMatch(/Retried by (Olga Ops \(Teams\)|[^{]*ualice01[^{]*) \{\{DATE/i); // by name and platform (people by name)
    const retry = executeActions(card).find((a) => a.verb === 'run.retry');
    expect(retry?.data).toMatchObject({ runId: run.id });
    expect(Number(retry?.data.v)).toBeGreaterThan(revision);
    expect(await retries(run.id)).toBe(1);
    expect(executions[`${run.id}:third`]).toBe(2);
  });
});

describe('Approve on a gate already escalated', () => {
  it('is answered and not recorded, on Slack and on Teams; Approve on the current copy is', async () => {
    const { run } = await startBySlash('run gated');
    await waitForRun(h.runtime, run.id, 'waiting');
    const approvalId = await poll(
      async () => (await db.pool.query<{ id: string }>('SELECT id FROM tollgate.approvals WHERE run_id = $1', [run.id])).rows[0]?.id,
      { message: 'the approval' },
    );
    // The CFO's Slack DM copy, and the Teams CFO's card, before the escalation.
    const dm = `D${CFO}`;
    const copy = await poll(() => h.fake.messagesIn(dm).find((m) => !m.thread_ts && buttonValue(m, 'approval.approve')?.startsWith(approvalId)), {
      message: "the CFO's DM copy",
    });
    const old = buttonValue(copy, 'approval.approve')!;
    expect(old).toMatch(new RegExp(`^${approvalId}@\\d+$`));
    const teamsCard = await poll(
      () => {
        for (const c of teams().connector.conversations)
          for (const a of teams().connector.activitiesIn(c.id))
            if (Array.isArray(a.activity.attachments) && JSON.stringify(a.activity).includes(approvalId))
              return { conversationId: c.id, id: a.id, card: cardOf(a.activity) };
        return undefined;
      },
      { message: "the Teams CFO's card" },
    );
    const oldData = executeActions(teamsCard.card).find((a) => a.verb === 'approval.approve')!.data;
    expect(oldData).toMatchObject({ approvalId, v: expect.any(Number) });

    // The deadline passes: the gate escalates to the CFOs (who may still decide).
    await db.pool.query(`UPDATE tollgate.approvals SET expires_at = now() - interval '1 second' WHERE id = $1`, [approvalId]);
    await h.runtime.advance(run.id, 'test-escalation');
    await poll(async () => (await db.pool.query('SELECT 1 FROM tollgate.approvals WHERE id = $1 AND escalations = 1', [approvalId])).rowCount === 1, {
      message: 'the escalation',
    });
    const decisions = () => count('SELECT count(*) AS n FROM tollgate.approval_decisions WHERE approval_id = $1', [approvalId]);

    // Approve on the pre-escalation Slack copy: answered, not recorded, the copy redrawn.
    const escalatedAt = await count(`SELECT max(seq) AS n FROM tollgate.events WHERE run_id = $1 AND type = 'approval.escalated'`, [run.id]);
    const current = await poll(
      () => {
        const v = buttonValue(h.fake.message(dm, copy.ts), 'approval.approve');
        return v && revisionOf(v) >= escalatedAt && v;
      },
      { message: 'the DM copy redrawn after the escalation' },
    );
    const updates = updatesOf(dm, copy.ts).length;
    await h.send(blockAction({ userId: CFO, teamId: TEAM, actionId: 'approval.approve', value: old, channelId: dm, messageTs: copy.ts }));
    const answer = await poll(
      () =>
        h.fake
          .callsTo('chat.postEphemeral')
          .concat(h.fake.callsTo('chat.postMessage'))
          .find((c) => c.args.channel === dm && blocksText(c.args.blocks).includes('out of date')),
      { message: 'the answer to the CFO' },
    );
    expect(blocksText(answer.args.blocks)).toContain('Its deadline passed and it was escalated to group cfo');
    expect(blocksText(answer.args.blocks)).toContain('Now: the approval waits for group cfo');
    expect(await decisions()).toBe(0);
    await poll(() => updatesOf(dm, copy.ts).length > updates, { message: 'a chat.update of the clicked copy' });

    // The Teams CFO's pre-escalation card: the answer is the card redrawn, with what happened since; not recorded.
    expect(Number(oldData.v)).toBeLessThan(escalatedAt);
    const res = await teams().send(
      teams().act.invoke({
        verb: 'approval.approve',
        data: oldData,
        from: TEAMS_CFO,
        tenant: TENANT,
        conversation: { id: teamsCard.conversationId, conversationType: 'personal' },
        replyToId: teamsCard.id,
      }),
    );
    expect(res.status).toBe(200);
    const card = (res.body as { value: AdaptiveCard }).value;
    expect(JSON.stringify(card)).toContain('This message was out of date, so nothing was done.');
    expect(JSON.stringify(card)).toContain('escalated to group cfo');
    expect(Number(executeActions(card).find((a) => a.verb === 'approval.approve')?.data.v)).toBeGreaterThan(revisionOf(old));
    expect(await decisions()).toBe(0);
    expect((await h.runtime.getRun(run.id)).run.status).toBe('waiting');

    // Reject on the pre-escalation Slack copy: answered at once, no reason form opened for nothing.
    const opens = h.fake.callsTo('views.open').length;
    const answers = () =>
      h.fake
        .callsTo('chat.postEphemeral')
        .concat(h.fake.callsTo('chat.postMessage'))
        .filter((c) => c.args.channel === dm && blocksText(c.args.blocks).includes('out of date')).length;
    const before = answers();
    await h.send(blockAction({ userId: CFO, teamId: TEAM, actionId: 'approval.reject', value: old, channelId: dm, messageTs: copy.ts }));
    await poll(() => answers() > before, { message: 'the answer to the Reject click' });
    expect(h.fake.callsTo('views.open')).toHaveLength(opens);
    expect(await decisions()).toBe(0);

    // Approve on the current copy is recorded and the run goes on.
    await h.send(blockAction({ userId: CFO, teamId: TEAM, actionId: 'approval.approve', value: current, channelId: dm, messageTs: copy.ts }));
    expect(await decisions()).toBe(1);
    await waitForRun(h.runtime, run.id, 'succeeded');
  });
});

describe('Cancel on an outdated copy', () => {
  it('after the gate it showed was approved, Cancel is answered and nothing is cancelled; Cancel on the current copy cancels', async () => {
    hold.opened = new Promise<void>((r) => (hold.release = r));
    const { run, channel } = await startBySlash('run guarded');
    await waitForRun(h.runtime, run.id, 'waiting');
    const message = await poll(() => h.fake.messagesIn(channel).find((m) => !m.thread_ts && buttonValue(m, 'approval.approve')), {
      message: 'the run message waiting for approval',
    });
    const oldCancel = buttonValue(message, 'run.cancel')!;
    expect(oldCancel).toMatch(new RegExp(`^${run.id}@\\d+$`));

    // Finance approves on the run message; the run goes on into the step that waits. The click's
    // job advances the run itself (one hop), so it stays busy in that step until it is released:
    // these clicks do not wait for every chat job to finish (`settle: false`), they poll for their outcome.
    await h.send(
      blockAction({
        userId: FIN,
        teamId: TEAM,
        actionId: 'approval.approve',
        value: buttonValue(message, 'approval.approve')!,
        channelId: channel,
        messageTs: message.ts,
      }),
      { settle: false },
    );
    await waitForRun(h.runtime, run.id, 'running');
    const approvedAt = await count(`SELECT max(seq) AS n FROM tollgate.events WHERE run_id = $1 AND type = 'approval.approved'`, [run.id]);
    expect(approvedAt).toBeGreaterThan(revisionOf(oldCancel));

    // Cancel on the copy drawn while it waited for approval: answered, not cancelled.
    await h.send(blockAction({ userId: ALICE, teamId: TEAM, actionId: 'run.cancel', value: oldCancel, channelId: channel, messageTs: message.ts }), {
      settle: false,
    });
    const answer = await poll(() => ephemeralsTo(ALICE, channel).find((c) => blocksText(c.args.blocks).includes('out of date')), {
      message: 'the answer to the Cancel click',
    });
    expect(blocksText(answer.args.blocks)).toContain(`Approved by <@${FIN}>`);
    expect((await h.runtime.getRun(run.id)).run.cancel_requested_at).toBeNull();

    // Cancel on the current copy is carried out.
    const current = await poll(
      () => {
        const v = buttonValue(h.fake.message(channel, message.ts), 'run.cancel');
        return v && revisionOf(v) >= approvedAt && v;
      },
      { message: 'the run message redrawn after the approval' },
    );
    await h.send(blockAction({ userId: ALICE, teamId: TEAM, actionId: 'run.cancel', value: current, channelId: channel, messageTs: message.ts }), {
      settle: false,
    });
    await poll(async () => (await h.runtime.getRun(run.id)).run.cancel_requested_at !== null, { message: 'the cancel on the current copy to be recorded' });
    hold.release();
    // (Cancelled at the next step boundary; the held step was the last, so it may also end as it was.)
    await waitForRun(h.runtime, run.id, ['cancelled', 'compensated', 'succeeded']);
  });
});
