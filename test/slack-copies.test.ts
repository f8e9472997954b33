/**
 * Approvals in Slack, for what every copy shows and what buttons offer: with a quorum of 2 of 3,
 * every copy (the run message, the thread copy, each DM) shows the same live tally and, once
 * resolved, everyone who decided; a run ended by a rejection offers no Retry and refuses one; a
 * refused click is acknowledged without waiting for Slack's API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseProjectConfig } from '../src/config/project-config.ts';
import type { RunRow } from '../src/db/queries/runs.ts';
import { defineWorkflow } from '../src/runtime/workflow.ts';
import { purchaseOrderWorkflow } from '../src/workflows/purchase-order.ts';
import { blockAction, ids, slashCommand, viewSubmission } from './fakes/slack/requests.ts';
import type { FakeMessage } from './fakes/slack/server.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { waitForRun } from './helpers/runtime.ts';
import { blocksText, startSlackHarness, type SlackHarness } from './helpers/slack.ts';
import { poll } from './helpers/poll.ts';

const TEAM = 'T1';
const ALICE = 'UALICE01';
const FIN = ['UFIN0001', 'UFIN0002', 'UFIN0003'] as const;
const BOB = 'UBOB0001';

const project = parseProjectConfig({
  groups: { finance: FIN.map((u) => `slack:${TEAM}:${u}`) },
  workflows: { 'purchase-order': { approvalThreshold: 1000 } },
});

const twoOfThree = defineWorkflow({
  name: 'two-of-three',
  version: 1,
  description: 'Two of the three finance people must approve',
  input: z.object({}),
  run: async (ctx) => {
    const gate = await ctx.approval('budget sign-off', { policy: { groups: ['finance'], quorum: 2 }, summary: 'Sign off the budget', params: { year: 2027 } });
    return gate.status;
  },
});

let db: TestDb;
let h: SlackHarness;

beforeAll(async () => {
  db = await createTestDb();
  h = await startSlackHarness(db, [twoOfThree, purchaseOrderWorkflow(project)], { project });
});
afterAll(async () => {
  await h?.stop();
  await db?.close();
});

const dmChannel = (user: string) => `D${user}`;
const hasAction = (m: FakeMessage, actionId: string) => blocksText(m.blocks).includes(`"action_id":"${actionId}"`);

async function start(text: string): Promise<{ run: RunRow; channel: string; approvalId: string }> {
  const channel = `C${ids.event().slice(2, 12)}`;
  await h.send(slashCommand({ text, userId: ALICE, teamId: TEAM, channelId: channel }));
  const { rows } = await db.pool.query<RunRow>(`SELECT * FROM tollgate.runs WHERE origin->>'conversation' = $1`, [channel]);
  const run = rows[0]!;
  await waitForRun(h.runtime, run.id, 'waiting');
  const approvalId = await poll(
    async () => (await db.pool.query<{ id: string }>(`SELECT id FROM tollgate.approvals WHERE run_id = $1`, [run.id])).rows[0]?.id,
    { message: 'the approval' },
  );
  return { run, channel, approvalId };
}

/** The run message, the thread copy and the three DMs (top-level messages only). */
function copies(channel: string, approvalId: string): FakeMessage[] {
  const inChannel = h.fake.messagesIn(channel).filter((m) => blocksText(m.blocks).includes(approvalId));
  const dms = FIN.flatMap((u) => h.fake.messagesIn(dmChannel(u)).filter((m) => !m.thread_ts && blocksText(m.blocks).includes(approvalId)));
  return [...inChannel, ...dms];
}

describe('every copy tells the same story', () => {
  it('with a quorum of 2 of 3, every copy shows the rule, then the live tally, then every approver once resolved', async () => {
    const { run, channel, approvalId } = await start('run two-of-three');
    await poll(() => copies(channel, approvalId).length === 5, { message: 'the run message, the thread copy and three DMs' });
    for (const m of copies(channel, approvalId)) {
      const text = blocksText(m.blocks);
      expect(text).toContain('2 approvals needed');
      expect(text).toContain('So far: no approvals (0 of 2)');
      expect(text).not.toContain('2 of 3'); // the rule must not read like a tally
    }

    const dm1 = copies(channel, approvalId).find((m) => m.channel === dmChannel(FIN[0]))!;
    await h.send(blockAction({ userId: FIN[0], teamId: TEAM, actionId: 'approval.approve', value: approvalId, channelId: dm1.channel, messageTs: dm1.ts }));
    await poll(
      () =>
        copies(channel, approvalId).every(
          (m) => blocksText(m.blocks).includes(`So far: 1 of 2 approvals (approved by <@${FIN[0]}>`) && hasAction(m, 'approval.approve'),
        ),
      { message: 'every copy to show 1 of 2 with the first approver, buttons kept' },
    );

    const dm2 = copies(channel, approvalId).find((m) => m.channel === dmChannel(FIN[1]))!;
    await h.send(blockAction({ userId: FIN[1], teamId: TEAM, actionId: 'approval.approve', value: approvalId, channelId: dm2.channel, messageTs: dm2.ts }));
    await waitForRun(h.runtime, run.id, 'succeeded');
    await poll(
      () =>
        copies(channel, approvalId).every((m) => {
          const text = blocksText(m.blocks);
          return new RegExp(`\\*Approved\\* by <@${FIN[0]}> [^,]*, <@${FIN[1]}>`).test(text) && !hasAction(m, 'approval.approve');
        }),
      { message: 'every copy to name both approvers, without buttons' },
    );
  });
});

describe('buttons that cannot help', () => {
  it('a purchase order rejected by its approver offers no Retry, and a retry is refused with the reason', async () => {
    const { run, channel, approvalId } = await start('run purchase-order vendor=Acme amount=5000 currency=EUR reason=laptops');
    const opens = h.fake.callsTo('views.open').length;
    await h.send(blockAction({ userId: FIN[2], teamId: TEAM, actionId: 'approval.reject', value: approvalId, channelId: dmChannel(FIN[2]), messageTs: '1.1' }));
    const view = h.fake.callsTo('views.open')[opens]!.args.view as { callback_id: string; private_metadata: string };
    await h.send(
      viewSubmission({
        userId: FIN[2],
        teamId: TEAM,
        callbackId: view.callback_id,
        privateMetadata: view.private_metadata,
        values: { reason: { value: { type: 'plain_text_input', value: 'not this quarter' } } },
      }),
    );
    await waitForRun(h.runtime, run.id, 'failed');
    const final = await poll(() => h.fake.messagesIn(channel).find((m) => !m.thread_ts && m.text?.includes('Failed')), { message: 'the failed run message' });
    expect(hasAction(final, 'run.retry')).toBe(false);

    const res = await h.send(slashCommand({ text: `retry ${run.id}`, userId: ALICE, teamId: TEAM, channelId: channel }));
    expect(JSON.stringify(res.json())).toContain('cannot be retried');
    expect(JSON.stringify(res.json())).toContain(approvalId);
    // A Retry click (say from an old copy of the message) is refused the same way, and explained.
    await h.send(blockAction({ userId: ALICE, teamId: TEAM, actionId: 'run.retry', value: run.id, channelId: channel, messageTs: final.ts }));
    const told = await poll(() => h.fake.callsTo('chat.postEphemeral').find((c) => c.args.channel === channel && c.args.user === ALICE), {
      message: 'the explanation',
    });
    expect(String(told.args.text)).toContain('cannot be retried');
    expect((await h.runtime.getRun(run.id)).run.status).toBe('failed');
  });
});

describe('acknowledgements', () => {
  it('a refused click is acknowledged without waiting for Slack: the explanation follows through the outbox', async () => {
    const { channel, approvalId } = await start('run two-of-three');
    const held = h.fake.hold('chat.postEphemeral');
    // Slack stays silent on the explanation until released; the ack must not wait for it.
    const release = setTimeout(() => held.release(), 10_000);
    try {
      const res = await h.send(
        blockAction({ userId: BOB, teamId: TEAM, actionId: 'approval.approve', value: approvalId, channelId: channel, messageTs: '1.1' }),
      );
      expect(res.status).toBe(200);
      expect(held.answeredAt).toBeUndefined(); // acknowledged while the explanation was still unanswered
    } finally {
      held.release();
      clearTimeout(release);
    }
    const told = await poll(() => h.fake.callsTo('chat.postEphemeral').find((c) => c.args.channel === channel && c.args.user === BOB), {
      message: 'the explanation',
    });
    expect(String(told.args.text)).toContain('Not allowed');
  });
});
