/**
 * Approvals in Slack end to end over HTTP: signed requests into our server's `POST /slack/events`,
 * the real Bolt app, the runtime with a project configuration (group `finance`), a real Graphile
 * worker on a test database, and the fake Slack Web API recording every call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { defineWorkflow } from '../src/runtime/workflow.ts';
import { purchaseOrderWorkflow } from '../src/workflows/purchase-order.ts';
import type { RunRow } from '../src/db/queries/runs.ts';
import { blockAction, eventCallback, ids, slashCommand, viewSubmission } from './fakes/slack/requests.ts';
import type { FakeMessage } from './fakes/slack/server.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { waitForRun } from './helpers/runtime.ts';
import { blocksText, startSlackHarness, type SlackHarness } from './helpers/slack.ts';
import { poll } from './helpers/poll.ts';

const TEAM = 'T1';
const ALICE = 'UALICE01'; // asks
const FIN1 = 'UFIN0001';
const FIN2 = 'UFIN0002';
const BOB = 'UBOB0001'; // not an approver

const project = parseProjectConfig({
  groups: { finance: [`slack:${TEAM}:${FIN1}`, `slack:${TEAM}:${FIN2}`] },
  workflows: { 'purchase-order': { approvalThreshold: 1000 } },
});

/** A gate both finance people must approve, with a short deadline (for the reminder). */
const quickGate = defineWorkflow({
  name: 'quick-gate',
  version: 1,
  description: 'A gate with a six-second deadline that both finance approvers must approve',
  input: z.object({}),
  run: async (ctx) => {
    const gate = await ctx.approval('sign-off', {
      policy: { groups: ['finance'], quorum: 'all' },
      summary: 'Sign off the quarter',
      params: { quarter: 'Q3' },
      timeout: '6s',
    });
    return gate.status;
  },
});

let db: TestDb;
let h: SlackHarness;

beforeAll(async () => {
  db = await createTestDb();
  h = await startSlackHarness(db, [purchaseOrderWorkflow(project), quickGate], { project });
});
afterAll(async () => {
  await h?.stop();
  await db?.close();
});

const hasAction = (m: FakeMessage, actionId: string) => blocksText(m.blocks).includes(`"action_id":"${actionId}"`);
const dmChannel = (user: string) => `D${user}`; // what the fake's conversations.open answers

async function slash(text: string, user: string, channel: string) {
  return h.send(slashCommand({ text, userId: user, teamId: TEAM, channelId: channel }));
}

/** Starts a purchase order above the threshold from a fresh channel; returns the run, its channel and its pending approval id. */
async function startOrder(amount = 5000, channel = `C${ids.event().slice(2, 12)}`): Promise<{ run: RunRow; channel: string; approvalId: string }> {
  const res = await slash(`run purchase-order vendor=Acme amount=${amount} currency=EUR reason="new laptops"`, ALICE, channel);
  expect(res.status).toBe(200);
  const { rows } = await db.pool.query<RunRow>(`SELECT * FROM tollgate.runs WHERE origin->>'conversation' = $1`, [channel]);
  const run = rows[0];
  if (!run) throw new Error(`no run started: ${res.text}`);
  await waitForRun(h.runtime, run.id, 'waiting');
  const approvalId = await poll(
    async () => {
      const a = await db.pool.query<{ id: string }>(`SELECT id FROM tollgate.approvals WHERE run_id = $1 AND status = 'pending'`, [run.id]);
      return a.rows[0]?.id;
    },
    { message: 'the pending approval' },
  );
  return { run, channel, approvalId };
}

/** The approval's DM to `user`, once it satisfies `until`. */
function dm(user: string, approvalId: string, until: (m: FakeMessage) => boolean = () => true): Promise<FakeMessage> {
  return poll(() => h.fake.messagesIn(dmChannel(user)).find((m) => !m.thread_ts && blocksText(m.blocks).includes(approvalId) && until(m)), {
    message: `the DM of ${approvalId} to ${user}`,
  });
}

/** Every copy of the approval: the run message, the thread copy, the DMs. */
async function copies(channel: string, approvalId: string): Promise<FakeMessage[]> {
  const inChannel = h.fake.messagesIn(channel).filter((m) => blocksText(m.blocks).includes(approvalId));
  const dms = [FIN1, FIN2].flatMap((u) => h.fake.messagesIn(dmChannel(u)).filter((m) => !m.thread_ts && blocksText(m.blocks).includes(approvalId)));
  return [...inChannel, ...dms];
}

async function decisions(approvalId: string): Promise<{ principal: string; decision: string; comment: string | null; via: string | null }[]> {
  const { rows } = await db.pool.query('SELECT principal, decision, comment, via FROM tollgate.approval_decisions WHERE approval_id = $1', [approvalId]);
  return rows;
}

/**
 * The click is durable when acknowledged (invariant 8): either its decision is recorded already,
 * or its `chat-intent` job (the recorded click, carried out by the worker right after) exists.
 */
async function clickRecorded(approvalId: string, principal: string): Promise<boolean> {
  const { rows } = await db.pool.query<{ n: string }>(
    `SELECT (SELECT count(*) FROM tollgate.approval_decisions WHERE approval_id = $1 AND principal = $2)
          + (SELECT count(*) FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
             WHERE t.identifier = 'chat-intent' AND j.payload->>'approvalId' = $1) AS n`,
    [approvalId, principal],
  );
  return Number(rows[0]?.n) > 0;
}

describe('approval requests in Slack', () => {
  it('slash command → run message → approval DM to each approver → Approve click → run resumes → every copy shows who approved, without buttons', async () => {
    const { run, channel, approvalId } = await startOrder();

    // Each approver gets a DM (conversations.open, then chat.postMessage) with what will happen.
    const [dm1, dm2] = await Promise.all([dm(FIN1, approvalId), dm(FIN2, approvalId)]);
    const opened = h.fake.callsTo('conversations.open').map((c) => c.args.users);
    expect(opened).toEqual(expect.arrayContaining([FIN1, FIN2]));
    for (const m of [dm1, dm2]) {
      const text = blocksText(m.blocks);
      expect(hasAction(m, 'approval.approve')).toBe(true);
      expect(hasAction(m, 'approval.reject')).toBe(true);
      expect(text).toContain('purchase-orders.create'); // the tool
      expect(text).toContain('Acme'); // the parameters
      expect(text).toContain('new laptops');
      expect(text).toContain('Risk: medium');
      expect(text).toContain('above the approval threshold'); // the rationale
      expect(text).toContain(`Asked by <@${ALICE}>`);
      // Buttons carry the approval id and the revision of the view they were drawn from (stale buttons), never who may act.
      const values = (m.blocks as { elements?: { action_id?: string; value?: string }[] }[])
        .flatMap((b) => b.elements ?? [])
        .filter((e) => e.action_id?.startsWith('approval.'));
      expect(values.map((e) => e.value?.replace(/@\d+$/, ''))).toEqual([approvalId, approvalId]);
      for (const e of values) expect(e.value).toMatch(/^apr_[0-9a-z]+@\d+$/);
    }
    // The requester is not an approver and gets no DM.
    expect(h.fake.messagesIn(dmChannel(ALICE))).toHaveLength(0);

    // The run message, and a copy in its thread.
    const runMsg = await poll(() => h.fake.messagesIn(channel).find((m) => !m.thread_ts && hasAction(m, 'approval.approve')), {
      message: 'the run message with buttons',
    });
    const threadCopy = await poll(() => h.fake.messagesIn(channel).find((m) => m.thread_ts === runMsg.ts), { message: 'the thread copy' });
    expect(hasAction(threadCopy, 'approval.approve')).toBe(true);

    // FIN1 approves from the DM.
    const res = await h.send(
      blockAction({ userId: FIN1, teamId: TEAM, actionId: 'approval.approve', value: approvalId, channelId: dmChannel(FIN1), messageTs: dm1.ts }),
    );
    expect(res.status).toBe(200);
    // Acknowledged only after the click was recorded (invariant 8); the worker decides right after.
    expect(await clickRecorded(approvalId, `slack:${TEAM}:${FIN1}`)).toBe(true);
    await poll(async () => (await decisions(approvalId)).length > 0, { message: 'the decision' });
    expect(await decisions(approvalId)).toEqual([{ principal: `slack:${TEAM}:${FIN1}`, decision: 'approve', comment: null, via: 'slack' }]);
    const done = await waitForRun(h.runtime, run.id, 'succeeded');
    expect(done.output).toMatchObject({ approvedBy: `slack:${TEAM}:${FIN1}` });

    // Every copy (run message, thread copy, both DMs) shows who approved and has no buttons.
    await poll(
      async () => {
        const all = await copies(channel, approvalId);
        return (
          all.length === 4 &&
          all.every((m) => !hasAction(m, 'approval.approve') && !hasAction(m, 'approval.reject') && blocksText(m.blocks).includes(`*Approved* by <@${FIN1}>`))
        );
      },
      { message: 'every copy to show the approval without buttons' },
    );
    const updated = h.fake.callsTo('chat.update').map((c) => `${String(c.args.channel)}/${String(c.args.ts)}`);
    for (const m of [dm1, dm2, threadCopy, runMsg]) expect(updated).toContain(`${m.channel}/${m.ts}`);
    // No ephemeral went to the approver whose decision was recorded.
    expect(h.fake.callsTo('chat.postEphemeral').filter((c) => c.args.user === FIN1 && c.args.channel === dmChannel(FIN1))).toHaveLength(0);
  });

  it('Reject opens a modal asking for a reason; submitting it rejects the order and every copy shows who rejected and why', async () => {
    const { run, channel, approvalId } = await startOrder();
    const dm2 = await dm(FIN2, approvalId);
    const opens = h.fake.callsTo('views.open').length;
    const click = await h.send(
      blockAction({ userId: FIN2, teamId: TEAM, actionId: 'approval.reject', value: approvalId, channelId: dmChannel(FIN2), messageTs: dm2.ts }),
    );
    expect(click.status).toBe(200);
    const open = h.fake.callsTo('views.open')[opens];
    const view = open?.args.view as { callback_id: string; private_metadata: string; blocks: { type: string; block_id?: string }[] };
    expect(view.callback_id).toBe('approval.reject');
    expect(JSON.parse(view.private_metadata)).toEqual({ approvalId, at: { channel: dmChannel(FIN2), threadTs: null } });
    expect(view.blocks.some((b) => b.type === 'input' && b.block_id === 'reason')).toBe(true);
    expect(await decisions(approvalId)).toHaveLength(0); // opening the form decides nothing

    const submit = (reason: string) =>
      h.send(
        viewSubmission({
          userId: FIN2,
          teamId: TEAM,
          callbackId: view.callback_id,
          privateMetadata: view.private_metadata,
          values: { reason: { value: { type: 'plain_text_input', value: reason } } },
        }),
      );
    const blank = await submit('   ');
    expect((blank.json() as { response_action: string; errors: Record<string, string> }).errors).toHaveProperty('reason');
    expect(await decisions(approvalId)).toHaveLength(0);

    const ok = await submit('over budget this quarter');
    expect(ok.status).toBe(200);
    expect(ok.text).toBe('');
    expect(await clickRecorded(approvalId, `slack:${TEAM}:${FIN2}`)).toBe(true);
    await poll(async () => (await decisions(approvalId)).length > 0, { message: 'the decision' });
    expect(await decisions(approvalId)).toEqual([
      { principal: `slack:${TEAM}:${FIN2}`, decision: 'reject', comment: 'over budget this quarter', via: 'slack' },
    ]);
    const failed = await waitForRun(h.runtime, run.id, 'failed');
    expect(JSON.stringify(failed.error)).toContain('over budget this quarter');

    await poll(
      async () => {
        const all = await copies(channel, approvalId);
        return (
          all.length === 4 &&
          all.every(
            (m) =>
              !hasAction(m, 'approval.approve') &&
              blocksText(m.blocks).includes(`*Rejected* by <@${FIN2}>`) &&
              blocksText(m.blocks).includes('over budget this quarter'),
          )
        );
      },
      { message: 'every copy to show the rejection and its reason' },
    );
  });

  it('the thread copy waits for the run message: with Slack down for its first post, the copy still lands in its thread', async () => {
    const channel = 'C0DOWNFIRST';
    h.fake.failNext('chat.postMessage', { status: 500, channel });
    const { approvalId } = await startOrder(5000, channel);
    const runMsg = await poll(() => h.fake.messagesIn(channel).find((m) => !m.thread_ts), { message: 'the run message after the outage' });
    const copy = await poll(() => h.fake.messagesIn(channel).find((m) => m.thread_ts === runMsg.ts && blocksText(m.blocks).includes(approvalId)), {
      message: 'the thread copy',
    });
    expect(hasAction(copy, 'approval.approve')).toBe(true);
    expect(h.fake.messagesIn(channel).filter((m) => m.thread_ts === runMsg.ts)).toHaveLength(1);
  });
});

describe('refusals', () => {
  it('an unauthorised approver gets an ephemeral explanation and nothing changes', async () => {
    const { run, channel, approvalId } = await startOrder();
    const runMsg = await poll(() => h.fake.messagesIn(channel).find((m) => !m.thread_ts && hasAction(m, 'approval.approve')), {
      message: 'the run message with buttons',
    });
    const events = await db.pool.query('SELECT count(*) AS n FROM tollgate.events WHERE run_id = $1', [run.id]);
    const opens = h.fake.callsTo('views.open').length;

    // Bob is in the workspace but not in finance; Alice asked, and is not in finance either.
    for (const user of [BOB, ALICE]) {
      const res = await h.send(
        blockAction({ userId: user, teamId: TEAM, actionId: 'approval.approve', value: approvalId, channelId: channel, messageTs: runMsg.ts }),
      );
      expect(res.status).toBe(200);
    }
    const rej = await h.send(
      blockAction({ userId: BOB, teamId: TEAM, actionId: 'approval.reject', value: approvalId, channelId: channel, messageTs: runMsg.ts }),
    );
    expect(rej.status).toBe(200);

    // Explained after the ack, through the outbox: one job per explanation, so they may arrive in
    // any order; each is matched to its clicker.
    const eph = await poll(
      () => {
        const e = h.fake.callsTo('chat.postEphemeral').filter((c) => c.args.channel === channel);
        return e.length >= 3 && e;
      },
      { message: 'three ephemeral explanations' },
    );
    const bobs = eph.filter((c) => c.args.user === BOB);
    expect(eph.map((c) => c.args.user).sort()).toEqual([BOB, ALICE, BOB].sort());
    for (const c of bobs) {
      expect(String(c.args.text)).toContain('Not allowed');
      expect(String(c.args.text)).toContain(`slack:${TEAM}:${BOB}`);
    }
    expect(String(eph.find((c) => c.args.user === ALICE)?.args.text)).toContain(`Not allowed: slack:${TEAM}:${ALICE}`);
    expect(h.fake.callsTo('views.open')).toHaveLength(opens); // no reason form for someone who cannot decide

    expect(await decisions(approvalId)).toHaveLength(0);
    const after = await db.pool.query('SELECT count(*) AS n FROM tollgate.events WHERE run_id = $1', [run.id]);
    expect(after.rows[0]).toEqual(events.rows[0]);
    expect((await h.runtime.getRun(run.id)).run.status).toBe('waiting');
  });

  it('a refused click on App Home (no channel) is explained in the app DM and changes nothing', async () => {
    const { approvalId } = await startOrder();
    const res = await h.send(
      blockAction({ userId: BOB, teamId: TEAM, actionId: 'approval.approve', value: approvalId, channelId: '', messageTs: '', fromHome: true }),
    );
    expect(res.status).toBe(200);
    const told = await poll(
      () => {
        const t = h.fake.callsTo('chat.postMessage').filter((c) => c.args.channel === BOB);
        return t.length > 0 && t;
      },
      { message: 'the explanation in the app DM' },
    );
    expect(String(told.at(-1)?.args.text)).toContain('Not allowed');
    expect(await decisions(approvalId)).toHaveLength(0);
  });

  it('the identity comes from the verified payload: the same user id in another workspace is refused', async () => {
    const { approvalId, channel } = await startOrder();
    await h.send(blockAction({ userId: FIN1, teamId: 'T0OTHER', actionId: 'approval.approve', value: approvalId, channelId: channel, messageTs: '1.1' }));
    expect(await decisions(approvalId)).toHaveLength(0);
    const eph = await poll(
      () => {
        const e = h.fake.callsTo('chat.postEphemeral').filter((c) => c.args.channel === channel && c.args.user === FIN1);
        return e.length > 0 && e;
      },
      { message: 'the explanation' },
    );
    expect(String(eph[0]?.args.text)).toContain('slack:T0OTHER:UFIN0001');
  });

  it('a double click records one decision; the second click is answered "already recorded"', async () => {
    const { run, approvalId } = await startOrder();
    const dm1 = await dm(FIN1, approvalId);
    const click = () =>
      h.send(blockAction({ userId: FIN1, teamId: TEAM, actionId: 'approval.approve', value: approvalId, channelId: dmChannel(FIN1), messageTs: dm1.ts }));
    const before = h.fake.callsTo('chat.postEphemeral').length;
    const [a, b] = await Promise.all([click(), click()]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const eph = await poll(
      () => {
        const e = h.fake
          .callsTo('chat.postEphemeral')
          .slice(before)
          .filter((c) => c.args.user === FIN1);
        return e.length > 0 && e;
      },
      { message: 'the explanation of the second click' },
    );
    await waitForRun(h.runtime, run.id, 'succeeded'); // by then every outbox row of the clicks is delivered too
    expect(eph).toHaveLength(1);
    expect(String(eph[0]?.args.text)).toContain('already recorded');
    const { rows } = await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM tollgate.approval_decisions WHERE approval_id = $1', [approvalId]);
    expect(Number(rows[0]?.n)).toBe(1);
    const decided = await db.pool.query(`SELECT count(*) AS n FROM tollgate.events WHERE run_id = $1 AND type = 'approval.decided'`, [run.id]);
    expect(Number(decided.rows[0]?.n)).toBe(1);
  });
});

describe('reachable without any one event: /tollgate approvals, App Home, reminders', () => {
  it('/tollgate approvals answers with my pending approvals and their buttons', async () => {
    const { approvalId } = await startOrder();
    const mine = await slash('approvals', FIN2, 'C0LISTAPR');
    const body = mine.json() as { response_type: string; blocks: unknown[] };
    expect(body.response_type).toBe('ephemeral');
    expect(blocksText(body.blocks)).toContain(approvalId);
    expect(blocksText(body.blocks)).toContain('"action_id":"approval.approve"');
    const bobs = (await slash('approvals', BOB, 'C0LISTAPR')).json() as { blocks: unknown[] };
    expect(blocksText(bobs.blocks)).not.toContain(approvalId);
    expect(blocksText(bobs.blocks)).toContain('Nothing waits for your decision');
  });

  it('App Home lists my pending approvals with buttons, refreshed when one is requested and when it is decided', async () => {
    const { approvalId, run } = await startOrder();
    const homeOf = (user: string) => h.fake.callsTo('views.publish').filter((c) => c.args.user_id === user);
    // Published without anyone opening the tab: the request itself refreshes it.
    await poll(() => homeOf(FIN2).some((c) => JSON.stringify(c.args.view).includes(approvalId) && JSON.stringify(c.args.view).includes('approval.approve')), {
      message: 'FIN2 home with the approval',
    });
    // Opening the tab publishes it too.
    const count = homeOf(FIN1).length;
    await h.send(
      eventCallback({
        userId: FIN1,
        teamId: TEAM,
        event: { type: 'app_home_opened', user: FIN1, channel: dmChannel(FIN1), tab: 'home', event_ts: '1700000300.000100' },
      }),
    );
    await poll(() => homeOf(FIN1).length > count && JSON.stringify(homeOf(FIN1).at(-1)?.args.view).includes(approvalId), {
      message: 'FIN1 home after app_home_opened',
    });
    // Approve through the Home tab's button: the homes of both approvers drop it.
    await h.send(blockAction({ userId: FIN1, teamId: TEAM, actionId: 'approval.approve', value: approvalId, channelId: dmChannel(FIN1), messageTs: '1.1' }));
    await waitForRun(h.runtime, run.id, 'succeeded');
    await poll(() => [FIN1, FIN2].every((u) => !JSON.stringify(homeOf(u).at(-1)?.args.view).includes(approvalId)), {
      message: 'both homes without the decided approval',
    });
  });

  it('approvers who have not decided get a reminder DM before the deadline; those who decided do not', async () => {
    const channel = 'C0REMIND';
    await slash('run quick-gate', ALICE, channel);
    const { rows } = await db.pool.query<RunRow>(`SELECT * FROM tollgate.runs WHERE origin->>'conversation' = $1`, [channel]);
    const run = rows[0]!;
    const approvalId = await poll(
      async () => (await db.pool.query<{ id: string }>(`SELECT id FROM tollgate.approvals WHERE run_id = $1`, [run.id])).rows[0]?.id,
      { message: 'the approval' },
    );
    const dm1 = await dm(FIN1, approvalId);
    const dm2 = await dm(FIN2, approvalId);
    await h.send(blockAction({ userId: FIN1, teamId: TEAM, actionId: 'approval.approve', value: approvalId, channelId: dmChannel(FIN1), messageTs: dm1.ts }));
    const reminder = await poll(() => h.fake.messagesIn(dmChannel(FIN2)).find((m) => m.thread_ts === dm2.ts), { message: 'the reminder to FIN2' });
    expect(reminder.text).toContain('Reminder');
    expect(blocksText(reminder.blocks)).toContain('Sign off the quarter');
    // The deadline passes: the gate expires and every copy says so, without buttons.
    await waitForRun(h.runtime, run.id, 'succeeded'); // the workflow returns the gate's status
    expect((await h.runtime.getRun(run.id)).run.output).toBe('expired');
    expect(h.fake.messagesIn(dmChannel(FIN1)).filter((m) => m.thread_ts === dm1.ts)).toHaveLength(0);
    const reminded = await db.pool.query<{ copy: string }>(`SELECT copy FROM tollgate.chat_messages WHERE approval_id = $1 AND reminded_at IS NOT NULL`, [
      approvalId,
    ]);
    expect(reminded.rows.map((r) => r.copy)).toEqual([`slack:${TEAM}:${FIN2}`]);
    await poll(
      () => {
        const m = h.fake.message(dmChannel(FIN2), dm2.ts);
        return m && !hasAction(m, 'approval.approve') && blocksText(m.blocks).includes('*Expired*');
      },
      { message: 'the DM to show the expiry' },
    );
  });
});
