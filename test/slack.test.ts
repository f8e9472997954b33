/**
 * The Slack adapter end to end over HTTP: signed requests into our server's `POST /slack/events`,
 * the real Bolt app, the runtime and a real Graphile worker on a test database, and the fake
 * Slack Web API recording what Tollgate called.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { NonRetriableError } from '../src/common/errors.ts';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { demo } from '../src/workflows/demo.ts';
import type { RunRow } from '../src/db/queries/runs.ts';
import { blockAction, eventCallback, ids, signSlackRequest, slashCommand, viewSubmission } from './fakes/slack/requests.ts';
import type { FakeMessage } from './fakes/slack/server.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { waitForRun } from './helpers/runtime.ts';
import { blocksText, startSlackHarness, type SlackHarness } from './helpers/slack.ts';
import { poll } from './helpers/poll.ts';

const TEAM = 'T0001';
const ALICE = 'UALICE01';
const BOB = 'UBOB0001';
const OPS = 'UOPS0001';
const CHANNEL = 'C0GENERAL';

let db: TestDb;
let h: SlackHarness;

/** Step bodies count their executions here, so tests can prove what ran again. */
const executions: Record<string, number> = {};
const flags = { thirdBroken: true };

const ticket = defineWorkflow({
  name: 'ticket',
  version: 1,
  description: 'Open a ticket',
  input: z.object({
    title: z.string().min(3).describe('What is wrong'),
    priority: z.enum(['low', 'high']),
    count: z.coerce.number().int().positive().describe('How many machines'),
  }),
  run: async (ctx) => ctx.step('open', () => ({ opened: ctx.input.title })),
});

const chain = defineWorkflow({
  name: 'chain',
  version: 1,
  description: 'Three steps; the third fails while the test says so',
  input: z.object({}),
  run: async (ctx) => {
    const count = (k: string) => (executions[`${ctx.runId}:${k}`] = (executions[`${ctx.runId}:${k}`] ?? 0) + 1);
    await ctx.step('first', () => count('first'));
    await ctx.step('second', () => count('second'));
    return ctx.step('third', () => {
      count('third');
      if (flags.thirdBroken) throw new NonRetriableError('the third step is broken on purpose');
      return 'done';
    });
  },
});

const slow = defineWorkflow({
  name: 'slow',
  version: 1,
  description: 'Sleeps for a minute',
  input: z.object({}),
  run: async (ctx) => {
    await ctx.step('before', () => 1);
    await ctx.sleep('nap', '60s');
    return ctx.step('after', () => 2);
  },
});

const many = defineWorkflow({
  name: 'many',
  version: 1,
  description: 'Thirty quick steps',
  input: z.object({}),
  run: async (ctx) => {
    for (let i = 1; i <= 30; i++) await ctx.step(`s${i}`, () => i);
    return 'ok';
  },
});

/** A run that waits in its first step until the test releases it. */
const gate = { release: () => {}, opened: Promise.resolve() };
function closeGate(): void {
  gate.opened = new Promise<void>((r) => (gate.release = r));
}
const held = defineWorkflow({
  name: 'held',
  version: 1,
  description: 'Waits in its first step until the test releases it',
  input: z.object({}),
  run: async (ctx) => {
    await ctx.step('wait', () => gate.opened);
    return ctx.step('publish', () => 'ok');
  },
});

const workflows = [demo, ticket, chain, slow, many, held] as unknown as WorkflowDefinition[];

beforeAll(async () => {
  db = await createTestDb();
  h = await startSlackHarness(db, workflows, { operators: [`slack:${TEAM}:${OPS}`] });
});
afterAll(async () => {
  await h?.stop();
  await db?.close();
});
afterEach(() => {
  flags.thirdBroken = true;
});

async function runsInChannel(channel: string): Promise<RunRow[]> {
  const { rows } = await db.pool.query<RunRow>(`SELECT * FROM tollgate.runs WHERE origin->>'conversation' = $1 ORDER BY created_at`, [channel]);
  return rows;
}

async function slash(text: string, o: { user?: string; channel?: string; triggerId?: string } = {}) {
  return h.send(slashCommand({ text, userId: o.user ?? ALICE, teamId: TEAM, channelId: o.channel ?? CHANNEL, triggerId: o.triggerId }));
}

/** Starts a run by slash command in a fresh channel; returns the run and its channel. */
async function startBySlash(text: string, user = ALICE, channel = `C${ids.event().slice(2, 12)}`): Promise<{ run: RunRow; channel: string }> {
  const res = await slash(text, { channel, user });
  expect(res.status).toBe(200);
  const [run] = await runsInChannel(channel);
  if (!run) throw new Error(`no run was started by "${text}": ${res.text}`);
  return { run, channel };
}

/** The run's message in the fake, once posted (and, with `until`, once it satisfies it). */
async function runMessage(channel: string, until: (m: FakeMessage) => boolean = () => true): Promise<FakeMessage> {
  try {
    return await poll(() => h.fake.messagesIn(channel).find(until), { message: `the run message in ${channel} to match` });
  } catch (e) {
    const jobs = await db.pool.query('SELECT task_identifier, key, attempts, last_error, run_at, locked_at FROM graphile_worker.jobs');
    const msgs = await db.pool.query('SELECT * FROM tollgate.chat_messages WHERE conversation = $1', [channel]);
    throw new Error(
      `${(e as Error).message}\nin the fake: ${JSON.stringify(h.fake.messagesIn(channel).map((m) => m.text))}\noutbox: ${JSON.stringify(msgs.rows)}\njobs: ${JSON.stringify(jobs.rows)}`,
      { cause: e },
    );
  }
}

const hasAction = (m: FakeMessage, actionId: string) => blocksText(m.blocks).includes(`"action_id":"${actionId}"`);

async function countRows(table: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM tollgate.${table}`);
  return Number(rows[0]?.n);
}

describe('slash commands and the live run message', () => {
  it('a slash command starts a run, posts its message in the channel and updates it in place to the final state', async () => {
    const { run, channel } = await startBySlash('run demo name=Ada sleepMs=0');
    expect(run.requester).toMatchObject({ platform: 'slack', tenant: TEAM, user: ALICE });
    await waitForRun(h.runtime, run.id, 'succeeded');
    const final = await runMessage(channel, (m) => m.text?.includes('Succeeded') === true);
    // One message, posted once in the channel, then only edited.
    expect(h.fake.callsTo('chat.postMessage').filter((c) => c.args.channel === channel)).toHaveLength(1);
    expect(h.fake.messagesIn(channel)).toHaveLength(1);
    expect(final.thread_ts).toBeUndefined();
    const updates = h.fake.callsTo('chat.update').filter((c) => c.args.channel === channel);
    expect(updates.every((c) => c.args.ts === final.ts)).toBe(true);
    const text = blocksText(final.blocks);
    for (const step of ['prepare', 'fetch', 'pause', 'transform', 'publish']) expect(text).toContain(step);
    expect(text).toContain(`<@${ALICE}>`);
    expect(text).toContain('demo* v1');
    expect(hasAction(final, 'run.retry')).toBe(false);
    expect(hasAction(final, 'run.cancel')).toBe(false);
    const stored = await db.pool.query('SELECT message_id AS ts, posted_hash FROM tollgate.chat_messages WHERE run_id = $1', [run.id]);
    expect(stored.rows[0]).toMatchObject({ ts: final.ts });
  });

  it('answers the slash command with the run id, after the run is recorded', async () => {
    const channel = 'C0ACKCHECK';
    const res = await slash('run demo sleepMs=0', { channel });
    const body = res.json() as { response_type: string; text: string };
    expect(body.response_type).toBe('ephemeral');
    const [run] = await runsInChannel(channel);
    expect(body.text).toContain(run?.id);
  });

  it('a mention in a thread starts the run and keeps its message in that thread', async () => {
    const channel = 'C0THREADS';
    const res = await h.send(
      eventCallback({
        userId: ALICE,
        teamId: TEAM,
        event: {
          type: 'app_mention',
          user: ALICE,
          text: `<@${h.fake.botUserId}> run demo name=Thread sleepMs=0`,
          ts: '1700000100.000200',
          thread_ts: '1700000000.000100',
          channel,
          event_ts: '1700000100.000200',
        },
      }),
    );
    expect(res.status).toBe(200);
    const [run] = await runsInChannel(channel);
    expect(run).toBeDefined();
    await waitForRun(h.runtime, run!.id, 'succeeded');
    const m = await runMessage(channel, (x) => x.text?.includes('Succeeded') === true);
    expect(m.thread_ts).toBe('1700000000.000100');
  });

  it('help and workflows list every workflow with its inputs', async () => {
    const res = await slash('help');
    const text = JSON.stringify(res.json());
    for (const name of ['demo', 'ticket', 'chain', 'slow', 'many']) expect(text).toContain(name);
    expect(text).toContain('title');
    expect(text).toContain('priority=low|high');
    const wf = JSON.stringify((await slash('workflows')).json());
    expect(wf).toContain('count (number)');
  });

  it('free text in a direct message gets a reply naming the run form, through the outbox', async () => {
    const channel = 'D0ALICE';
    await h.send(
      eventCallback({
        userId: ALICE,
        teamId: TEAM,
        event: {
          type: 'message',
          channel_type: 'im',
          user: ALICE,
          text: 'please order laptops',
          ts: '1700000200.000100',
          channel,
          event_ts: '1700000200.000100',
        },
      }),
    );
    const reply = await runMessage(channel);
    expect(reply.text).toContain('run <workflow> key=value');
  });

  it('App Home shows my recent runs', async () => {
    const { run } = await startBySlash('run demo sleepMs=0', BOB);
    await h.send(
      eventCallback({ userId: BOB, teamId: TEAM, event: { type: 'app_home_opened', user: BOB, channel: 'D0BOB', tab: 'home', event_ts: '1700000300.000100' } }),
    );
    const publish = await poll(() => h.fake.callsTo('views.publish').find((c) => c.args.user_id === BOB), { message: 'views.publish for Bob' });
    expect(JSON.stringify(publish.args.view)).toContain(run.id);
  });
});

describe('parameters modal', () => {
  it('missing parameter → modal; an invalid value shows the field error; a valid one starts the run', async () => {
    const channel = 'C0MODAL';
    const res = await slash('run ticket title=Printer', { channel });
    expect(res.status).toBe(200);
    expect(await runsInChannel(channel)).toHaveLength(0);
    const open = await poll(() => h.fake.callsTo('views.open').at(-1), { message: 'views.open' });
    const view = open.args.view as {
      callback_id: string;
      private_metadata: string;
      blocks: { block_id?: string; type: string; element?: { initial_value?: string; options?: unknown[] } }[];
    };
    expect(view.callback_id).toBe('run.params');
    const inputs = view.blocks.filter((b) => b.type === 'input');
    expect(inputs.map((b) => b.block_id)).toEqual(['title', 'priority', 'count']);
    expect(inputs[0]?.element?.initial_value).toBe('Printer'); // prefilled with what was given
    expect(inputs[1]?.element?.options).toHaveLength(2);

    const submit = (count: string) =>
      h.send(
        viewSubmission({
          userId: ALICE,
          teamId: TEAM,
          callbackId: view.callback_id,
          privateMetadata: view.private_metadata,
          values: {
            title: { value: { type: 'plain_text_input', value: 'Printer' } },
            priority: { value: { type: 'static_select', selected_option: { text: { type: 'plain_text', text: 'high' }, value: 'high' } } },
            count: { value: { type: 'plain_text_input', value: count } },
          },
        }),
      );
    const invalid = await submit('-2');
    expect(invalid.status).toBe(200);
    const errors = invalid.json() as { response_action: string; errors: Record<string, string> };
    expect(errors.response_action).toBe('errors');
    expect(Object.keys(errors.errors)).toEqual(['count']);
    expect(await runsInChannel(channel)).toHaveLength(0);

    const valid = await submit('3');
    expect(valid.status).toBe(200);
    expect(valid.text).toBe('');
    const [run] = await runsInChannel(channel);
    expect(run?.input).toEqual({ title: 'Printer', priority: 'high', count: 3 });
    await waitForRun(h.runtime, run!.id, 'succeeded');
    await runMessage(channel, (m) => m.text?.includes('Succeeded') === true);
  });
});

describe('parameters from a mention', () => {
  it('a mention with a missing parameter gets a reply whose button opens the prefilled form in the thread', async () => {
    const channel = 'C0MENTIONFORM';
    await h.send(
      eventCallback({
        userId: ALICE,
        teamId: TEAM,
        event: {
          type: 'app_mention',
          user: ALICE,
          text: `<@${h.fake.botUserId}> run ticket title=Scanner`,
          ts: '1700000600.000100',
          channel,
          event_ts: '1700000600.000100',
        },
      }),
    );
    const reply = await runMessage(channel);
    expect(reply.thread_ts).toBe('1700000600.000100');
    expect(reply.text).toContain('priority');
    const button = (reply.blocks as { type: string; elements?: { action_id: string; value: string }[] }[])
      .flatMap((b) => b.elements ?? [])
      .find((e) => e.action_id === 'run.params.open');
    expect(button).toBeDefined();
    const opens = h.fake.callsTo('views.open').length;
    await h.send(
      blockAction({
        userId: ALICE,
        teamId: TEAM,
        actionId: 'run.params.open',
        value: button!.value,
        channelId: channel,
        messageTs: reply.ts,
        threadTs: '1700000600.000100',
      }),
    );
    const open = h.fake.callsTo('views.open')[opens];
    const view = open?.args.view as { private_metadata: string; blocks: { block_id?: string; element?: { initial_value?: string } }[] };
    expect(view.blocks.find((b) => b.block_id === 'title')?.element?.initial_value).toBe('Scanner');
    expect(JSON.parse(view.private_metadata)).toMatchObject({ workflow: 'ticket', channel, threadTs: '1700000600.000100' });
    expect(await runsInChannel(channel)).toHaveLength(0);
  });
});

describe('Retry and Cancel buttons', () => {
  it('failed step → Retry click resumes from the failed step; earlier steps are not executed again', async () => {
    const { run, channel } = await startBySlash('run chain');
    await waitForRun(h.runtime, run.id, 'failed');
    const failed = await runMessage(channel, (m) => hasAction(m, 'run.retry'));
    expect(blocksText(failed.blocks)).toContain('the third step is broken on purpose');
    expect(blocksText(failed.blocks)).toContain('Step *third* failed');

    flags.thirdBroken = false;
    const res = await h.send(blockAction({ userId: ALICE, teamId: TEAM, actionId: 'run.retry', value: run.id, channelId: channel, messageTs: failed.ts }));
    expect(res.status).toBe(200);
    await waitForRun(h.runtime, run.id, 'succeeded');
    expect(executions[`${run.id}:first`]).toBe(1);
    expect(executions[`${run.id}:second`]).toBe(1);
    expect(executions[`${run.id}:third`]).toBe(2);
    const done = await runMessage(channel, (m) => m.text?.includes('Succeeded') === true);
    expect(done.ts).toBe(failed.ts);
    expect(hasAction(done, 'run.retry')).toBe(false);
  });

  it('an operator may retry a run someone else started', async () => {
    const { run, channel } = await startBySlash('run chain');
    await waitForRun(h.runtime, run.id, 'failed');
    const failed = await runMessage(channel, (m) => hasAction(m, 'run.retry'));
    flags.thirdBroken = false;
    await h.send(blockAction({ userId: OPS, teamId: TEAM, actionId: 'run.retry', value: run.id, channelId: channel, messageTs: failed.ts }));
    await waitForRun(h.runtime, run.id, 'succeeded');
  });

  it('a Retry click by someone who is neither requester nor operator gets an ephemeral explanation and changes nothing', async () => {
    const { run, channel } = await startBySlash('run chain');
    await waitForRun(h.runtime, run.id, 'failed');
    const failed = await runMessage(channel, (m) => hasAction(m, 'run.retry'));
    const before = await db.pool.query('SELECT count(*) AS n FROM tollgate.events WHERE run_id = $1', [run.id]);
    flags.thirdBroken = false;
    const res = await h.send(blockAction({ userId: BOB, teamId: TEAM, actionId: 'run.retry', value: run.id, channelId: channel, messageTs: failed.ts }));
    expect(res.status).toBe(200);
    // Explained after the ack, through the outbox.
    const eph = await poll(
      () => {
        const e = h.fake.callsTo('chat.postEphemeral').filter((c) => c.args.user === BOB && c.args.channel === channel);
        return e.length > 0 && e;
      },
      { message: 'the ephemeral explanation' },
    );
    expect(eph).toHaveLength(1);
    expect(String(eph[0]?.args.text)).toContain('Only the person who started');
    const after = await db.pool.query('SELECT count(*) AS n FROM tollgate.events WHERE run_id = $1', [run.id]);
    expect(after.rows[0]).toEqual(before.rows[0]);
    expect((await h.runtime.getRun(run.id)).run.status).toBe('failed');
  });

  it('the identity comes from the payload, not from the button: a forged value cannot act for someone else', async () => {
    // Bob clicks a button whose value names Alice's run: he is still Bob, and still refused.
    const { run, channel } = await startBySlash('run slow');
    await waitForRun(h.runtime, run.id, 'waiting');
    await h.send(blockAction({ userId: BOB, teamId: TEAM, actionId: 'run.cancel', value: run.id, channelId: channel, messageTs: '1.1' }));
    expect((await h.runtime.getRun(run.id)).run.cancel_requested_at).toBeNull();
    await h.runtime.cancel(run.id, null);
  });

  it('a Cancel click stops a waiting run and the message shows it cancelled', async () => {
    const { run, channel } = await startBySlash('run slow');
    await waitForRun(h.runtime, run.id, 'waiting');
    const waiting = await runMessage(channel, (m) => hasAction(m, 'run.cancel') && m.text?.includes('Waiting') === true);
    expect(blocksText(waiting.blocks)).toContain('Waiting (sleep)');
    const res = await h.send(blockAction({ userId: ALICE, teamId: TEAM, actionId: 'run.cancel', value: run.id, channelId: channel, messageTs: waiting.ts }));
    expect(res.status).toBe(200);
    await waitForRun(h.runtime, run.id, 'cancelled');
    const done = await runMessage(channel, (m) => m.text?.includes('Cancelled') === true);
    expect(done.ts).toBe(waiting.ts);
    expect(hasAction(done, 'run.cancel')).toBe(false);
    const events = await db.pool.query<{ type: string; actor: unknown }>(
      `SELECT type, actor FROM tollgate.events WHERE run_id = $1 AND type = 'run.cancel_requested'`,
      [run.id],
    );
    expect(events.rows[0]?.actor).toMatchObject({ platform: 'slack', tenant: TEAM, user: ALICE });
  });
});

describe('refusals and retries', () => {
  it('a bad signature is refused with 401 and nothing is recorded', async () => {
    const [runs, events, deliveries] = await Promise.all([countRows('runs'), countRows('events'), countRows('chat_delivery_keys')]);
    const req = slashCommand({ text: 'run demo', userId: ALICE, teamId: TEAM, channelId: 'C0BADSIG' });
    const bad = await h.send(req, { signature: `v0=${'0'.repeat(64)}` });
    expect(bad.status).toBe(401);
    const otherSecret = signSlackRequest('not-the-secret', req.body)['x-slack-signature'];
    expect((await h.send(req, { signature: otherSecret })).status).toBe(401);
    expect([await countRows('runs'), await countRows('events'), await countRows('chat_delivery_keys')]).toEqual([runs, events, deliveries]);
  });

  it('a stale timestamp is refused with 401 and nothing is recorded', async () => {
    const [runs, events, deliveries] = await Promise.all([countRows('runs'), countRows('events'), countRows('chat_delivery_keys')]);
    const req = slashCommand({ text: 'run demo', userId: ALICE, teamId: TEAM, channelId: 'C0STALE' });
    const res = await h.send(req, { timestampSec: Math.floor(Date.now() / 1000) - 6 * 60 }); // correctly signed, 6 minutes old
    expect(res.status).toBe(401);
    expect([await countRows('runs'), await countRows('events'), await countRows('chat_delivery_keys')]).toEqual([runs, events, deliveries]);
  });

  it('a retried event (X-Slack-Retry-Num) or a duplicate event_id starts no second run', async () => {
    const channel = 'C0RETRIED';
    const req = eventCallback({
      userId: ALICE,
      teamId: TEAM,
      eventId: 'Ev0RETRY0001',
      event: {
        type: 'app_mention',
        user: ALICE,
        text: `<@${h.fake.botUserId}> run demo sleepMs=0`,
        ts: '1700000400.000100',
        channel,
        event_ts: '1700000400.000100',
      },
    });
    // The original and Slack's retry racing each other, then a late duplicate without the header.
    const [first, retry] = await Promise.all([h.send(req), h.send(req, { headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' } })]);
    const late = await h.send(req);
    expect([first.status, retry.status, late.status]).toEqual([200, 200, 200]);
    expect(await runsInChannel(channel)).toHaveLength(1);
    const d = await db.pool.query(`SELECT kind, run_id FROM tollgate.chat_delivery_keys WHERE key = 'event:Ev0RETRY0001'`);
    expect(d.rows).toHaveLength(1);
  });

  it('a re-sent slash command (same trigger_id) starts no second run', async () => {
    const channel = 'C0RESENT';
    const triggerId = ids.trigger();
    await slash('run demo sleepMs=0', { channel, triggerId });
    const again = await slash('run demo sleepMs=0', { channel, triggerId });
    expect(again.status).toBe(200);
    expect(await runsInChannel(channel)).toHaveLength(1);
  });
});

describe('delivery through the outbox', () => {
  it('429 on chat.update: the message is correct after Retry-After', async () => {
    // Deterministic: the run is held in its first step until its message is posted, so the 429
    // always meets an update (a run that finished before its first delivery needed none).
    closeGate();
    const { run, channel } = await startBySlash('run held', ALICE, 'C0LIMITED');
    await runMessage(channel, (m) => blocksText(m.blocks).includes('wait'));
    const before = h.fake.callsTo('chat.update').length;
    h.fake.failNext('chat.update', { status: 429, retryAfter: 1, channel: 'C0LIMITED' });
    gate.release();
    await waitForRun(h.runtime, run.id, 'succeeded');
    const final = await runMessage(channel, (m) => m.text?.includes('Succeeded') === true);
    const updates = h.fake.callsTo('chat.update');
    const limited = updates.findIndex((c, i) => i >= before && c.args.channel === channel);
    expect(limited).toBeGreaterThanOrEqual(0); // the first update of this message was the 429
    const next = updates.slice(limited + 1).find((c) => c.args.channel === channel);
    expect(next).toBeDefined();
    // Retry-After: 1 was honoured: no call for this message before a second had passed.
    expect(next!.at - updates[limited]!.at).toBeGreaterThanOrEqual(1000);
    expect(blocksText(final.blocks)).toContain('publish');
  });

  it('Slack down (500 on chat.postMessage): the run goes on and the message catches up', async () => {
    h.fake.failNext('chat.postMessage', { status: 500, channel: 'C0SLACKDOWN' });
    const { run, channel } = await startBySlash('run demo sleepMs=0', ALICE, 'C0SLACKDOWN');
    await waitForRun(h.runtime, run.id, 'succeeded');
    const final = await runMessage(channel, (m) => m.text?.includes('Succeeded') === true);
    expect(h.fake.messagesIn(channel)).toHaveLength(1);
    expect(final.ts).toBeDefined();
    const posts = h.fake.callsTo('chat.postMessage').filter((c) => c.args.channel === channel);
    expect(posts.length).toBe(2); // the 500, then the retry by Graphile Worker
  });

  it('a burst of step updates is coalesced: a run of 30 steps that finished while Slack was deferred gets one post', async () => {
    const channel = 'C0BURST';
    h.fake.failNext('chat.postMessage', { status: 429, retryAfter: 3, channel });
    const { run } = await startBySlash('run many', ALICE, channel);
    await waitForRun(h.runtime, run.id, 'succeeded');
    const final = await runMessage(channel, (m) => m.text?.includes('Succeeded') === true);
    const { rows } = await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM tollgate.events WHERE run_id = $1', [run.id]);
    expect(Number(rows[0]?.n)).toBeGreaterThan(60);
    // The 429, then one post of the final state; no update was needed.
    expect(h.fake.callsTo('chat.postMessage').filter((c) => c.args.channel === channel)).toHaveLength(2);
    expect(h.fake.callsTo('chat.update').filter((c) => c.args.channel === channel)).toHaveLength(0);
    expect(blocksText(final.blocks)).toContain('s30');
  });

  it('a message Slack refuses for good (not_in_channel) is recorded and not retried; the run is unaffected', async () => {
    const channel = 'C0PRIVATE';
    h.fake.failNext('chat.postMessage', { error: 'not_in_channel', channel, times: 100 });
    const { run } = await startBySlash('run demo sleepMs=0', ALICE, channel);
    await waitForRun(h.runtime, run.id, 'succeeded');
    const row = await poll(
      async () => {
        const r = await db.pool.query<{ last_error: string; ts: string | null }>(
          'SELECT last_error, message_id AS ts FROM tollgate.chat_messages WHERE run_id = $1',
          [run.id],
        );
        return r.rows[0]?.last_error ? r.rows[0] : undefined;
      },
      { message: 'the refusal to be recorded' },
    );
    expect(row.ts).toBeNull();
    expect(row.last_error).toContain('not_in_channel');
    // Given up after the first refusal: later events of the run did not try again.
    expect(h.fake.callsTo('chat.postMessage').filter((c) => c.args.channel === channel)).toHaveLength(1);
    const jobs = await db.pool.query(`SELECT id FROM graphile_worker.jobs WHERE key = $1 AND last_error IS NOT NULL`, [`chat:run:${run.id}`]);
    expect(jobs.rows).toHaveLength(0);
  });
});
