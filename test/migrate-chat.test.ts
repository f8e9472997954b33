/**
 * Migration 000008 (the platform-neutral chat layer) on a database holding wave-1 Slack data: the
 * database is migrated only up to 000006 (what landed with the Slack bot), seeded the way wave-1
 * code left it (a Slack run waiting for an approval, its undelivered run message, a DM copy, a
 * reply, pending `slack-deliver` and `slack-approval-remind` jobs, delivery keys, a CLI run), then
 * migrated by `migrate()` as `npm start` would. Delivery then goes on through the new job and the
 * Slack platform against the fake Slack Web API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runner } from 'node-pg-migrate';
import { runMigrations as runWorkerMigrations } from 'graphile-worker';
import { createSlackAdapter } from '../bots/slack/index.ts';
import { taskList } from '../jobs/index.ts';
import { createChat } from '../src/chat/index.ts';
import { applyFunctions, MIGRATIONS_DIR, migrate } from '../src/db/migrate.ts';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { newProcessId, startWorker, type WorkerHandle } from '../src/worker/worker.ts';
import { startFakeSlack, type FakeSlack } from './fakes/slack/server.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { blocksText } from './helpers/slack.ts';
import { poll } from './helpers/poll.ts';

let db: TestDb;
let fake: FakeSlack | undefined;
let worker: WorkerHandle | undefined;

beforeAll(async () => {
  db = await createTestDb({ migrate: false });
  const client = await db.pool.connect();
  try {
    await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      direction: 'up',
      count: 6,
      migrationsTable: 'migrations',
      migrationsSchema: 'tollgate',
      createMigrationsSchema: true,
      checkOrder: true,
      log: () => {},
    });
  } finally {
    client.release();
  }
  await runWorkerMigrations({ pgPool: db.pool });
});
afterAll(async () => {
  await worker?.stop();
  await fake?.close();
  await db?.close();
});

/** What wave-1 code left in the database, written with wave-1 SQL. */
async function seedWave1(): Promise<void> {
  await db.pool.query(`
    INSERT INTO tollgate.runs (id, workflow, workflow_version, status, wait_reason, input, requester, origin) VALUES
      ('run_w1slack', 'purchase-order', 1, 'waiting', 'approval', '{"vendor":"Acme","amount":5000}',
       '{"platform":"slack","tenant":"T1","user":"UALICE01"}', '{"platform":"slack","team":"T1","channel":"C0WAVE1","threadTs":null}'),
      ('run_w1cli', 'demo', 1, 'succeeded', NULL, '{}', '{"platform":"cli","tenant":"host","user":"ops"}', '{"kind":"cli"}');
    INSERT INTO tollgate.approvals (id, run_id, step_idx, name, status, policy, summary, params, params_hash, requester, expires_at) VALUES
      ('apr_w1', 'run_w1slack', 1, 'finance approval', 'pending',
       '{"approvers":["slack:T1:UFIN0001"],"groups":["finance"],"named":[],"quorum":"first","required":1,"allowSelfApproval":false}',
       'Buy laptops from Acme for 5000 EUR', '{"vendor":"Acme"}', 'h1', '{"platform":"slack","tenant":"T1","user":"UALICE01"}', now() + interval '2 days');
    -- The run's live message and the approver's DM copy, neither delivered yet (Slack was down).
    INSERT INTO tollgate.chat_messages (id, kind, run_id, channel, thread_ts) VALUES ('msg_w1run', 'run', 'run_w1slack', 'C0WAVE1', NULL);
    INSERT INTO tollgate.chat_messages (id, kind, run_id, approval_id, copy, dm_user) VALUES ('msg_w1dm', 'approval', 'run_w1slack', 'apr_w1', 'slack:T1:UFIN0001', 'UFIN0001');
    -- A reply to a mention, in wave-1's body format ({text, blocks}).
    INSERT INTO tollgate.chat_messages (id, kind, channel, thread_ts, body) VALUES
      ('msg_w1reply', 'reply', 'C0WAVE1', '1700000000.000100', '{"text":"wave-1 reply","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"wave-1 reply"}}]}');
    INSERT INTO tollgate.slack_deliveries (key, kind, run_id) VALUES ('command:trig-w1', 'command', 'run_w1slack');
  `);
  // Events fire wave-1's Slack trigger, which queues slack-deliver jobs for the run and the approval.
  await db.pool.query(
    `INSERT INTO tollgate.events (run_id, type, payload) VALUES ('run_w1slack', 'run.waiting', '{}'), ('run_w1slack', 'approval.requested', '{"approvalId":"apr_w1"}')`,
  );
  await db.pool.query(`SELECT tollgate.slack_enqueue(json_build_object('messageId', 'msg_w1reply'), 'slack:msg:msg_w1reply')`);
  await db.pool.query(
    `SELECT graphile_worker.add_job('slack-approval-remind', json_build_object('approvalId', 'apr_w1'), run_at => now() + interval '1 day', job_key => 'slack:remind:apr_w1', job_key_mode => 'replace')`,
  );
}

async function jobs(): Promise<{ task: string; key: string | null; payload: unknown }[]> {
  const { rows } = await db.pool.query<{ task: string; key: string | null; payload: unknown }>(
    `SELECT t.identifier AS task, j.key, j.payload FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id ORDER BY j.id`,
  );
  return rows;
}

describe('migration 000008 on wave-1 Slack data', () => {
  it('keeps every row and pending delivery, and delivery goes on through chat-deliver', async () => {
    await seedWave1();
    expect((await jobs()).map((j) => j.task).sort()).toEqual(['slack-approval-remind', 'slack-deliver', 'slack-deliver', 'slack-deliver']);

    await migrate(db.pool, testLogger());
    // Migrating again is harmless: no migration runs twice, and the functions file, unchanged, is
    // not applied again (no lock on tollgate.events at every start); a changed one is.
    expect(await migrate(db.pool, testLogger())).toEqual([]);
    expect(await applyFunctions(db.pool)).toEqual([]);
    await db.pool.query(`UPDATE tollgate.function_files SET sha256 = 'older'`);
    expect(await applyFunctions(db.pool)).toEqual(['audit_chain.sql', 'chat_delivery.sql']);

    const origins = await db.pool.query<{ id: string; origin: unknown }>(`SELECT id, origin FROM tollgate.runs ORDER BY id`);
    expect(origins.rows).toEqual([
      { id: 'run_w1cli', origin: { platform: 'cli' } },
      { id: 'run_w1slack', origin: { platform: 'slack', tenant: 'T1', conversation: 'C0WAVE1', thread: null } },
    ]);
    const keys = await db.pool.query(`SELECT platform, key, run_id FROM tollgate.chat_delivery_keys`);
    expect(keys.rows).toEqual([{ platform: 'slack', key: 'command:trig-w1', run_id: 'run_w1slack' }]);
    const msgs = await db.pool.query(`SELECT id, platform, tenant, conversation, thread, message_id, dm_to FROM tollgate.chat_messages ORDER BY id`);
    expect(msgs.rows).toEqual([
      { id: 'msg_w1dm', platform: 'slack', tenant: 'T1', conversation: null, thread: null, message_id: null, dm_to: 'slack:T1:UFIN0001' },
      { id: 'msg_w1reply', platform: 'slack', tenant: null, conversation: 'C0WAVE1', thread: '1700000000.000100', message_id: null, dm_to: null },
      { id: 'msg_w1run', platform: 'slack', tenant: 'T1', conversation: 'C0WAVE1', thread: null, message_id: null, dm_to: null },
    ]);
    const moved = await jobs();
    expect(moved.map((j) => `${j.task} ${j.key}`).sort()).toEqual([
      'chat-approval-remind chat:remind:apr_w1',
      'chat-deliver chat:apr:apr_w1',
      'chat-deliver chat:msg:msg_w1reply',
      'chat-deliver chat:run:run_w1slack',
    ]);

    // Deliver with the new code: the Slack platform against the fake Slack Web API.
    const log = testLogger();
    fake = await startFakeSlack({ token: 'xoxb-test-token' });
    const registry = new WorkflowRegistry();
    const runtime = new Runtime({ pool: db.pool, registry, log });
    const slack = createSlackAdapter({
      config: { signingSecret: 'secret', botToken: 'xoxb-test-token', appToken: undefined, apiUrl: fake.apiUrl },
      core: () => chat.core,
      log,
      clientOptions: { retryConfig: { retries: 0 } },
    });
    const chat = createChat({ pool: db.pool, runtime, registry, log, platforms: [slack!.platform] });
    const processId = newProcessId();
    worker = await startWorker({
      pool: db.pool,
      log,
      tasks: taskList({ runtime, processId, chat: chat.deliverer, intents: chat.core }),
      concurrency: 2,
      pollIntervalMs: 100,
      deadAfterMs: 3000,
      processId,
    });

    const runMsg = await poll(() => fake!.messagesIn('C0WAVE1').find((m) => !m.thread_ts && m.text?.includes('purchase-order')), {
      message: 'the run message',
    });
    expect(blocksText(runMsg.blocks)).toContain('Approval for finance approval'); // the run message shows its pending approval
    await poll(() => fake!.messagesIn('C0WAVE1').find((m) => m.thread_ts === '1700000000.000100' && m.text === 'wave-1 reply'), {
      message: 'the wave-1 reply',
    });
    const dm = await poll(() => fake!.messagesIn('DUFIN0001').find((m) => blocksText(m.blocks).includes('apr_w1')), { message: 'the approver DM' });
    expect(blocksText(dm.blocks)).toContain('"action_id":"approval.approve"');
    await poll(() => fake!.messagesIn('C0WAVE1').find((m) => m.thread_ts === runMsg.ts && blocksText(m.blocks).includes('apr_w1')), {
      message: 'the thread copy under the run message',
    });
    const left = await jobs();
    expect(left.filter((j) => j.task.startsWith('slack-'))).toEqual([]);
  });
});
