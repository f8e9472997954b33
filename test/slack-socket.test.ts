/**
 * Socket Mode: with SLACK_APP_TOKEN set, the same Bolt app takes requests over the fake Slack's
 * WebSocket instead of HTTP, and a slash command is acknowledged only after its run is recorded.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { demo } from '../src/workflows/demo.ts';
import { ids } from './fakes/slack/requests.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { waitForRun } from './helpers/runtime.ts';
import { intentsCarriedOut } from './helpers/intents.ts';
import { startSlackHarness, type SlackHarness } from './helpers/slack.ts';
import { poll } from './helpers/poll.ts';

let db: TestDb;
let h: SlackHarness;

beforeAll(async () => {
  db = await createTestDb();
  h = await startSlackHarness(db, [demo], { appToken: 'xapp-1-A0001-test' });
  await h.fake.socketMode.connected();
});
afterAll(async () => {
  await h?.stop();
  await db?.close();
});

/** The run a delivery key was recorded with: the request is durable, its run id given (invariant 8). */
async function runOfKey(key: string): Promise<string | undefined> {
  const { rows } = await db.pool.query<{ run_id: string }>(`SELECT run_id FROM tollgate.chat_delivery_keys WHERE platform = 'slack' AND key = $1`, [key]);
  return rows[0]?.run_id;
}

it('in Socket Mode a slash command starts a run, is acknowledged after the request is recorded, and the run message is posted', async () => {
  const channel = 'C0SOCKET';
  const trigger = ids.trigger();
  const ack = await h.fake.socketMode.push('slash_commands', {
    token: 'deprecated',
    team_id: 'T0001',
    team_domain: 'fake',
    channel_id: channel,
    channel_name: 'general',
    user_id: 'UALICE01',
    user_name: 'alice',
    command: '/tollgate',
    text: 'run demo name=Socket sleepMs=0',
    api_app_id: 'A0001',
    is_enterprise_install: 'false',
    response_url: 'https://hooks.slack.test/commands/1',
    trigger_id: trigger,
  });
  // At the moment of the ack the request is recorded with the run id the answer names (invariant
  // 8); the worker creates that run right after.
  const runId = await runOfKey(`command:${trigger}`);
  expect(runId).toMatch(/^run_/);
  expect(JSON.stringify(ack.payload)).toContain(runId!);
  await intentsCarriedOut(db.pool);
  await waitForRun(h.runtime, runId!, 'succeeded');
  const { rows } = await db.pool.query<{ id: string }>(`SELECT id FROM tollgate.runs WHERE origin->>'conversation' = $1`, [channel]);
  expect(rows.map((r) => r.id)).toEqual([runId]);
  await poll(() => h.fake.messagesIn(channel).find((m) => m.text?.includes('Succeeded')), { message: 'the run message' });
  expect(h.fake.callsTo('apps.connections.open').length).toBeGreaterThanOrEqual(1);
});

it('in Socket Mode a mention is acknowledged only after it is recorded (Bolt would ack events first)', async () => {
  const channel = 'C0SOCKETEV';
  const ack = await h.fake.socketMode.push('events_api', {
    token: 'deprecated',
    team_id: 'T0001',
    api_app_id: 'A0001',
    type: 'event_callback',
    event_id: 'Ev0SOCKET01',
    event_time: Math.floor(Date.now() / 1000),
    event: { type: 'app_mention', user: 'UALICE01', text: '<@UBOT0001> run demo sleepMs=0', ts: '1700000500.000100', channel, event_ts: '1700000500.000100' },
    authorizations: [{ team_id: 'T0001', user_id: 'UBOT0001', is_bot: true, is_enterprise_install: false }],
  });
  expect(ack.envelope_id).toBeDefined();
  const runId = await runOfKey('event:Ev0SOCKET01');
  expect(runId).toMatch(/^run_/);
  await intentsCarriedOut(db.pool);
  await waitForRun(h.runtime, runId!, 'succeeded');
  const { rows } = await db.pool.query<{ id: string }>(`SELECT id FROM tollgate.runs WHERE origin->>'conversation' = $1`, [channel]);
  expect(rows.map((r) => r.id)).toEqual([runId]);
});
