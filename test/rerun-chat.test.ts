/**
 * Edit and retry and Resolve by hand end to end over Slack's HTTP surface (signed requests, the
 * real Bolt app, the fake Slack Web API) and over Teams' (JWT-signed activities, Action.Execute),
 * on the built-in purchase-order with a real worker. The vendor's notification endpoint (a local
 * server) answers 500 unless the order names its order desk (`vendorContact`), so the input edit is
 * what fixes the failure (docs/operator-control.md).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProjectConfig } from '../src/config/project-config.ts';
import type { RunRow } from '../src/db/queries/runs.ts';
import { purchaseOrderWorkflow } from '../src/workflows/purchase-order.ts';
import { executeActions, type AdaptiveCard } from '../bots/teams/cards.ts';
import { blockAction, ids, slashCommand, viewSubmission } from './fakes/slack/requests.ts';
import type { FakeMessage } from './fakes/slack/server.ts';
import type { TeamsConversation, TeamsUser } from './fakes/teams/index.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { startHttpTarget, type HttpTarget } from './helpers/http-target.ts';
import { poll } from './helpers/poll.ts';
import { waitForRun } from './helpers/runtime.ts';
import { blocksText, startSlackHarness, type SlackHarness } from './helpers/slack.ts';

const TEAM = 'T0001';
const ALICE = 'UALICE01'; // requester
const BOB = 'UBOB0001'; // finance
const OPS = 'UOPS0001'; // operator
const DESK = 'orders@acme.example';
const TENANT = 'tenant-contoso';
const tuser = (n: string): TeamsUser => ({ id: `29:${n}`, aadObjectId: `aad-${n}` });
const REQ = tuser('req');
const FIN = tuser('fin');
const TOPS = tuser('ops');
const tp = (u: TeamsUser) => `teams:${TENANT}:${u.aadObjectId}`;

let db: TestDb;
let h: SlackHarness;
let vendor: HttpTarget;

beforeAll(async () => {
  db = await createTestDb();
  vendor = await startHttpTarget((req) => {
    const body = JSON.parse(req.body) as { vendorContact?: string };
    return body.vendorContact === DESK ? { json: { ok: true } } : { status: 500, text: 'no such order desk' };
  });
  const project = parseProjectConfig({
    groups: { finance: [`slack:${TEAM}:${BOB}`, tp(FIN)] },
    operators: [`slack:${TEAM}:${OPS}`, tp(TOPS)],
    workflows: { 'purchase-order': { approvalThreshold: 1000, notifyUrl: `${vendor.url}/orders` } },
  });
  h = await startSlackHarness(db, [purchaseOrderWorkflow(project)], { project, teams: true });
});
afterAll(async () => {
  await h?.stop();
  await vendor?.close();
  await db?.close();
});

async function orders(runId: string) {
  return (await db.pool.query('SELECT status, amount::float AS amount FROM tollgate.purchase_orders WHERE run_id = $1 ORDER BY created_at', [runId])).rows;
}
async function events(runId: string, type: string) {
  return (
    await db.pool.query<{ actor: unknown; payload: Record<string, unknown> }>(
      'SELECT actor, payload FROM tollgate.events WHERE run_id = $1 AND type = $2 ORDER BY id',
      [runId, type],
    )
  ).rows;
}
async function pendingApproval(runId: string, not?: string): Promise<string> {
  return poll(
    async () =>
      (await db.pool.query<{ id: string }>(`SELECT id FROM tollgate.approvals WHERE run_id = $1 AND status = 'pending' AND id <> $2`, [runId, not ?? '']))
        .rows[0]?.id,
    { message: `a pending approval of ${runId}` },
  );
}

// ----- Slack -------------------------------------------------------------------------------------

const hasAction = (m: FakeMessage, actionId: string) => blocksText(m.blocks).includes(`"action_id":"${actionId}"`);

async function slackOrder(params: string): Promise<{ run: RunRow; channel: string; message: FakeMessage }> {
  const channel = `C${ids.event().slice(2, 12)}`;
  const res = await h.send(slashCommand({ text: `run purchase-order ${params}`, userId: ALICE, teamId: TEAM, channelId: channel }));
  expect(res.status).toBe(200);
  const run = await poll(async () => (await db.pool.query<RunRow>(`SELECT * FROM tollgate.runs WHERE origin->>'conversation' = $1`, [channel])).rows[0], {
    message: 'the run',
  });
  return { run, channel, message: undefined as unknown as FakeMessage };
}

async function failedMessage(channel: string): Promise<FakeMessage> {
  return poll(() => h.fake.messagesIn(channel).find((m) => hasAction(m, 'run.edit')), { message: `the failed run's message in ${channel}` });
}

interface Modal {
  callback_id: string;
  private_metadata: string;
  blocks: { block_id?: string; type: string; text?: { text: string }; element?: { initial_value?: string } }[];
}

/** Clicks a button on the run message and returns the modal it opened. */
async function openModal(user: string, actionId: string, runId: string, channel: string, ts: string): Promise<Modal> {
  const before = h.fake.callsTo('views.open').length;
  const res = await h.send(blockAction({ userId: user, teamId: TEAM, actionId, value: runId, channelId: channel, messageTs: ts }));
  expect(res.status).toBe(200);
  return (await poll(() => h.fake.callsTo('views.open')[before], { message: 'views.open' })).args.view as Modal;
}

const input = (value: string) => ({ value: { type: 'plain_text_input', value } });

/** The edit form's values as Slack sends them, with `changes` put in. */
function editValues(modal: Modal, changes: Record<string, string>) {
  const values: Record<string, Record<string, unknown>> = {};
  for (const b of modal.blocks.filter((x) => x.type === 'input')) values[b.block_id!] = input(changes[b.block_id!] ?? b.element?.initial_value ?? '');
  return values;
}

/** Submits the edit form, then confirms what it will do; returns the confirmation's text. */
async function slackEdit(modal: Modal, user: string, changes: Record<string, string>): Promise<{ preview: string; done: string }> {
  const next = await h.send(
    viewSubmission({ userId: user, teamId: TEAM, callbackId: modal.callback_id, privateMetadata: modal.private_metadata, values: editValues(modal, changes) }),
  );
  const confirm = (next.json() as { response_action: string; view: Modal }).view;
  expect(confirm.callback_id).toBe('run.edit.confirm');
  const preview = JSON.stringify(confirm.blocks);
  const sent = await h.send(
    viewSubmission({ userId: user, teamId: TEAM, callbackId: confirm.callback_id, privateMetadata: confirm.private_metadata, values: {} }),
  );
  return { preview, done: JSON.stringify((sent.json() as { view: Modal }).view.blocks) };
}

describe('Slack: Edit and retry', () => {
  it('a failed notification, corrected in the prefilled form, resumes at the failed step with the earlier steps untouched', async () => {
    const { run, channel } = await slackOrder('vendor=Acme amount=200 currency=EUR reason=pens vendorContact=desk@acme.example');
    await waitForRun(h.runtime, run.id, 'failed');
    const msg = await failedMessage(channel);
    expect(hasAction(msg, 'run.retry')).toBe(true);
    const form = await openModal(ALICE, 'run.edit', run.id, channel, msg.ts);
    expect(form.callback_id).toBe('run.edit');
    expect(form.blocks.find((b) => b.block_id === 'vendorContact')?.element?.initial_value).toBe('desk@acme.example');
    expect(form.blocks.find((b) => b.block_id === 'amount')?.element?.initial_value).toBe('200');

    // A bad value comes back under its field; nothing is recorded.
    const bad = await h.send(
      viewSubmission({
        userId: ALICE,
        teamId: TEAM,
        callbackId: 'run.edit',
        privateMetadata: form.private_metadata,
        values: editValues(form, { amount: '-5' }),
      }),
    );
    expect(bad.json()).toMatchObject({ response_action: 'errors', errors: { amount: expect.any(String) } });
    expect(await events(run.id, 'run.edited')).toEqual([]);

    const { preview, done } = await slackEdit(form, ALICE, { vendorContact: DESK });
    expect(preview).toContain('Every completed step is kept');
    expect(preview).toContain('resumes at \\"notify vendor\\"');
    expect(done).toContain('Edited');
    await waitForRun(h.runtime, run.id, 'succeeded');
    expect(await orders(run.id)).toEqual([{ status: 'open', amount: 200 }]);
    expect(await events(run.id, 'approval.auto_approved')).toHaveLength(1);
    expect((await events(run.id, 'step.started')).filter((e) => e.payload.step === 'purchase-orders.create')).toHaveLength(1);
    expect((await events(run.id, 'run.edited'))[0]).toMatchObject({
      actor: expect.objectContaining({ platform: 'slack', tenant: TEAM, user: ALICE }),
      payload: { changed: { vendorContact: { from: 'desk@acme.example', to: DESK } }, via: 'slack' },
    });
  });

  it('an edit that changes an approved amount asks for approval again', async () => {
    const { run, channel } = await slackOrder('vendor=Acme amount=3000 currency=EUR reason=desks');
    const first = await pendingApproval(run.id);
    await h.send(blockAction({ userId: BOB, teamId: TEAM, actionId: 'approval.approve', value: first, channelId: channel, messageTs: '1.1' }));
    await waitForRun(h.runtime, run.id, 'failed');
    const msg = await failedMessage(channel);
    const form = await openModal(ALICE, 'run.edit', run.id, channel, msg.ts);
    const { preview } = await slackEdit(form, ALICE, { amount: '2500', vendorContact: DESK });
    expect(preview).toContain('Steps \\"approval\\", \\"purchase-orders.create\\" will run again; \\"purchase-orders.create\\" will be undone first.');
    const second = await pendingApproval(run.id, first);
    expect((await db.pool.query('SELECT status FROM tollgate.approvals WHERE id = $1', [first])).rows[0]).toEqual({ status: 'voided' });
    expect((await db.pool.query('SELECT params FROM tollgate.approvals WHERE id = $1', [second])).rows[0].params).toMatchObject({ amount: 2500 });
    await h.send(blockAction({ userId: BOB, teamId: TEAM, actionId: 'approval.approve', value: second, channelId: channel, messageTs: '1.1' }));
    await waitForRun(h.runtime, run.id, 'succeeded');
    expect(await orders(run.id)).toEqual([
      { status: 'void', amount: 3000 },
      { status: 'open', amount: 2500 },
    ]);
  });
});

describe('Slack: Resolve by hand', () => {
  it('an operator resolves the failed step with its output and a reason; the run continues; the requester is refused', async () => {
    const { run, channel } = await slackOrder('vendor=Acme amount=100 currency=EUR reason=ink');
    await waitForRun(h.runtime, run.id, 'failed');
    const msg = await poll(() => h.fake.messagesIn(channel).find((m) => hasAction(m, 'run.resolve')), { message: 'Resolve on the message' });

    const opens = h.fake.callsTo('views.open').length;
    await h.send(blockAction({ userId: ALICE, teamId: TEAM, actionId: 'run.resolve', value: run.id, channelId: channel, messageTs: msg.ts }));
    const eph = await poll(() => h.fake.callsTo('chat.postEphemeral').find((c) => c.args.user === ALICE && c.args.channel === channel), {
      message: 'the refusal',
    });
    expect(String(eph.args.text)).toContain('Only an operator can resolve');
    expect(h.fake.callsTo('views.open')).toHaveLength(opens);

    const modal = await openModal(OPS, 'run.resolve', run.id, channel, msg.ts);
    expect(modal.callback_id).toBe('run.resolve');
    const submit = (output: string, reason: string) =>
      h.send(
        viewSubmission({
          userId: OPS,
          teamId: TEAM,
          callbackId: 'run.resolve',
          privateMetadata: modal.private_metadata,
          values: {
            'resolve.action': { value: { type: 'static_select', selected_option: { text: { type: 'plain_text', text: 'x' }, value: 'by-hand' } } },
            'resolve.output': input(output),
            'resolve.reason': input(reason),
          },
        }),
      );
    const bad = await submit('{"status": "sent"}', 'phoned');
    expect(bad.json()).toMatchObject({ response_action: 'errors', errors: { 'resolve.output': expect.stringContaining('status') } });
    const ok = await submit('{"status": 200, "note": "phoned"}', 'phoned the vendor');
    expect(JSON.stringify(ok.json())).toContain('done by hand');
    await waitForRun(h.runtime, run.id, 'succeeded');
    expect(await events(run.id, 'step.resolved_by_hand')).toEqual([
      {
        actor: expect.objectContaining({ platform: 'slack', tenant: TEAM, user: OPS }),
        payload: { step: 'notify vendor', output: { status: 200, note: 'phoned' }, reason: 'phoned the vendor', via: 'slack' },
      },
    ]);
  });
});

// ----- Teams -------------------------------------------------------------------------------------

const personal = (u: TeamsUser): TeamsConversation => ({ id: `a:personal-${u.aadObjectId}-${ids.event().slice(2, 8)}`, conversationType: 'personal' });
const cardOfActivity = (a: Record<string, unknown>): AdaptiveCard => (a.attachments as { content: AdaptiveCard }[])[0]!.content;
const verbs = (c: AdaptiveCard) => executeActions(c).map((a) => a.verb);

async function click(from: TeamsUser, conversation: TeamsConversation, verb: string, data: Record<string, unknown>, replyToId?: string): Promise<AdaptiveCard> {
  const t = h.teams!;
  const res = await t.send(t.act.invoke({ verb, data, from, tenant: TENANT, conversation, ...(replyToId ? { replyToId } : {}) }));
  expect(res.status).toBe(200);
  return (res.body as { value: AdaptiveCard }).value;
}

async function teamsOrder(conv: TeamsConversation, text: string): Promise<{ run: RunRow; posted: string }> {
  const t = h.teams!;
  await t.send(t.act.message({ text, from: REQ, tenant: TENANT, conversation: conv, mentionBot: false }));
  const run = await poll(async () => (await db.pool.query<RunRow>(`SELECT * FROM tollgate.runs WHERE origin->>'conversation' = $1`, [conv.id])).rows[0], {
    message: 'the run',
  });
  await waitForRun(h.runtime, run.id, 'failed');
  const posted = await poll(
    () =>
      t.connector
        .activitiesIn(conv.id)
        .filter((a) => Array.isArray(a.activity.attachments))
        .find((a) => verbs(cardOfActivity(a.activity)).includes('run.edit')),
    { message: 'the failed run card with Edit and retry' },
  );
  return { run, posted: posted.id };
}

describe('Teams: Edit and retry and Resolve by hand', () => {
  it('the card form, prefilled, previews what runs again and resumes at the failed step once confirmed', async () => {
    const conv = personal(REQ);
    const { run, posted } = await teamsOrder(conv, 'run purchase-order vendor=Acme amount=300 currency=EUR reason=chairs vendorContact=desk@acme.example');
    const form = await click(REQ, conv, 'run.edit', { runId: run.id }, posted);
    expect(verbs(form)).toEqual(['run.edit.preview']);
    const contact = form.body.find((e) => e.id === 'param.vendorContact') as { value?: string } | undefined;
    expect(contact?.value).toBe('desk@acme.example');

    const values = { 'param.vendor': 'Acme', 'param.amount': '300', 'param.currency': 'EUR', 'param.reason': 'chairs' };
    const bad = await click(REQ, conv, 'run.edit.preview', { runId: run.id, ...values, 'param.amount': 'lots', 'param.vendorContact': DESK }, posted);
    expect(verbs(bad)).toEqual(['run.edit.preview']);
    expect(JSON.stringify(bad)).toContain('decimal number');

    const preview = await click(REQ, conv, 'run.edit.preview', { runId: run.id, ...values, 'param.vendorContact': DESK }, posted);
    expect(JSON.stringify(preview)).toContain('Every completed step is kept');
    const confirm = executeActions(preview).find((a) => a.verb === 'run.edit.confirm')!;
    const after = await click(REQ, conv, confirm.verb, confirm.data, posted);
    expect(JSON.stringify(after)).toContain('Edited');
    await waitForRun(h.runtime, run.id, 'succeeded');
    expect(await orders(run.id)).toEqual([{ status: 'open', amount: 300 }]);
    expect((await events(run.id, 'step.started')).filter((e) => e.payload.step === 'purchase-orders.create')).toHaveLength(1);
    expect((await events(run.id, 'run.edited'))[0]?.payload).toMatchObject({ changed: { vendorContact: { to: DESK } }, via: 'teams' });
  });

  it('an edit of an approved amount asks for approval again', async () => {
    const conv = personal(REQ);
    const t = h.teams!;
    await t.send(
      t.act.message({
        text: 'run purchase-order vendor=Acme amount=4000 currency=EUR reason=racks',
        from: REQ,
        tenant: TENANT,
        conversation: conv,
        mentionBot: false,
      }),
    );
    const run = await poll(async () => (await db.pool.query<RunRow>(`SELECT * FROM tollgate.runs WHERE origin->>'conversation' = $1`, [conv.id])).rows[0], {
      message: 'the run',
    });
    const first = await pendingApproval(run.id);
    await click(FIN, personal(FIN), 'approval.approve', { approvalId: first });
    await waitForRun(h.runtime, run.id, 'failed');
    const values = { 'param.vendor': 'Acme', 'param.amount': '3500', 'param.currency': 'EUR', 'param.reason': 'racks', 'param.vendorContact': DESK };
    const preview = await click(REQ, conv, 'run.edit.preview', { runId: run.id, ...values });
    expect(JSON.stringify(preview)).toContain('will be asked again');
    const confirm = executeActions(preview).find((a) => a.verb === 'run.edit.confirm')!;
    await click(REQ, conv, confirm.verb, confirm.data);
    const second = await pendingApproval(run.id, first);
    await click(FIN, personal(FIN), 'approval.approve', { approvalId: second });
    await waitForRun(h.runtime, run.id, 'succeeded');
    expect(await orders(run.id)).toEqual([
      { status: 'void', amount: 4000 },
      { status: 'open', amount: 3500 },
    ]);
  });

  it('an operator resolves by hand from the card form; who and why are recorded', async () => {
    const conv = personal(REQ);
    const { run, posted } = await teamsOrder(conv, 'run purchase-order vendor=Acme amount=90 currency=EUR reason=paper');
    const refused = await click(REQ, conv, 'run.resolve', { runId: run.id }, posted);
    expect(JSON.stringify(refused)).toContain('Only an operator can resolve');
    const form = await click(TOPS, conv, 'run.resolve', { runId: run.id }, posted);
    expect(verbs(form)).toEqual(['run.resolve.submit']);
    const noReason = await click(TOPS, conv, 'run.resolve.submit', { runId: run.id, 'resolve.action': 'by-hand', 'resolve.output': '{"status": 200}' }, posted);
    expect(JSON.stringify(noReason)).toContain('Say why');
    const done = await click(
      TOPS,
      conv,
      'run.resolve.submit',
      { runId: run.id, 'resolve.action': 'by-hand', 'resolve.output': '{"status": 202}', 'resolve.reason': 'emailed the order desk' },
      posted,
    );
    expect(JSON.stringify(done)).toContain('done by hand');
    await waitForRun(h.runtime, run.id, 'succeeded');
    expect(await events(run.id, 'step.resolved_by_hand')).toEqual([
      {
        actor: expect.objectContaining({ platform: 'teams', tenant: TENANT, user: TOPS.aadObjectId }),
        payload: { step: 'notify vendor', output: { status: 202 }, reason: 'emailed the order desk', via: 'teams' },
      },
    ]);
  });
});
