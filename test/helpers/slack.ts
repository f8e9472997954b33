/**
 * Tollgate's Slack adapter end to end on a test database: the real Bolt app mounted on our real
 * HTTP server, a real Graphile worker delivering the outbox, and the fake Slack Web API
 * (test/fakes/slack) behind the unmodified Web API client. Requests are signed like Slack's.
 * With `teams: true`, the Teams adapter joins the same chat layer (test/helpers/teams.ts).
 */
import { createSlackAdapter, type SlackAdapter } from '../../bots/slack/index.ts';
import { createChat, type Chat } from '../../src/chat/index.ts';
import { taskList } from '../../jobs/index.ts';
import { WorkflowRegistry } from '../../src/runtime/registry.ts';
import { Runtime } from '../../src/runtime/runtime.ts';
import type { WorkflowDefinition } from '../../src/runtime/workflow.ts';
import { createHttpServer, type HttpServer } from '../../src/server/http.ts';
import { newProcessId, startWorker, type WorkerHandle } from '../../src/worker/worker.ts';
import { startFakeSlack, type FakeSlack } from '../fakes/slack/server.ts';
import { sendToSlackEndpoint, type SendOptions, type SlackRequest, type SlackResponse } from '../fakes/slack/requests.ts';
/** A database to run on: the test helpers' TestDb, or any pool (the bench). */
type TestDb = Pick<import('./db.ts').TestDb, 'pool'>;
import { testLogger } from './log.ts';
import { intentsCarriedOut } from './intents.ts';
import { startTeamsParts, type TeamsParts } from './teams.ts';
import { EMPTY_PROJECT_CONFIG, type ProjectConfig } from '../../src/config/project-config.ts';
import type { ModelClient } from '../../src/model/types.ts';
import type { Logger } from '../../src/common/log.ts';

export const SIGNING_SECRET = 'test-signing-secret-8f7d6c';
export const BOT_TOKEN = 'xoxb-test-token';

export interface SlackHarness {
  runtime: Runtime;
  /** With `teams: true`: the Teams adapter on the same chat layer, with its fakes. */
  teams: TeamsParts | undefined;
  slack: SlackAdapter;
  chat: Chat;
  fake: FakeSlack;
  worker: WorkerHandle;
  http: HttpServer;
  url: string;
  /** Sends a signed request; with `settle` (the default), resolves once the worker has carried out what it recorded (test/helpers/intents.ts). */
  send(req: SlackRequest, o?: Partial<SendOptions> & { settle?: boolean }): Promise<SlackResponse>;
  stop(): Promise<void>;
}

export async function startSlackHarness(
  db: TestDb,
  workflows: WorkflowDefinition[],
  opts: {
    operators?: string[];
    concurrency?: number;
    appToken?: string;
    project?: ProjectConfig;
    reminderLeadMs?: number;
    teams?: boolean;
    model?: ModelClient;
    /** The chat layer's logger (default: quiet), e.g. to read what it logged. */
    log?: Logger;
  } = {},
): Promise<SlackHarness> {
  const log = opts.log ?? testLogger();
  const fake = await startFakeSlack({ token: BOT_TOKEN });
  const registry = new WorkflowRegistry().register(...workflows);
  // The runtime authorises retry and cancel, so it is the one that must know the operators.
  const operators = opts.operators ?? opts.project?.operators ?? [];
  const project = { ...(opts.project ?? EMPTY_PROJECT_CONFIG), operators };
  const runtime = new Runtime({ pool: db.pool, registry, log, inlineWaitMaxMs: 200, project });
  // Undefined until createChat returns: the adapter is built first and holds `core` for later.
  let chat: Chat | undefined = undefined;
  const slack = createSlackAdapter({
    config: { signingSecret: SIGNING_SECRET, botToken: BOT_TOKEN, appToken: opts.appToken, apiUrl: fake.apiUrl },
    core: () => chat!.core,
    log,
    // A 500 must fail the call now (the outbox retries it), not stall the suite.
    clientOptions: { retryConfig: { retries: 0 } },
  });
  if (!slack) throw new Error('the Slack adapter was not created');
  let url = '';
  const teams = opts.teams ? await startTeamsParts({ pool: db.pool, core: () => chat!.core, log, url: () => url }) : undefined;
  chat = createChat({
    pool: db.pool,
    runtime,
    registry,
    log,
    platforms: teams ? [slack.platform, teams.adapter.platform] : [slack.platform],
    ...(opts.reminderLeadMs !== undefined ? { reminderLeadMs: opts.reminderLeadMs } : {}),
    model: opts.model,
    tenants: project.tenants,
  });
  const processId = newProcessId();
  const worker = await startWorker({
    pool: db.pool,
    log,
    tasks: taskList({ runtime, processId, chat: chat.deliverer, intents: chat.core }),
    concurrency: opts.concurrency ?? 4,
    pollIntervalMs: 100,
    deadAfterMs: 3000,
    processId,
  });
  const http = createHttpServer({ log, checks: { pool: db.pool } });
  slack.mount(http);
  teams?.adapter.mount(http);
  await slack.start();
  const addr = await http.listen(0, '127.0.0.1');
  url = `http://127.0.0.1:${addr.port}`;
  return {
    runtime,
    teams,
    slack,
    chat,
    fake,
    worker,
    http,
    url,
    send: async (req, { settle = true, ...o } = {}) => {
      const res = await sendToSlackEndpoint(`${url}/slack/events`, req, { signingSecret: SIGNING_SECRET, ...o });
      if (settle) await intentsCarriedOut(db.pool);
      return res;
    },
    stop: async () => {
      await http.close();
      await worker.stop();
      await slack.stop();
      await fake.close();
      await teams?.stop();
    },
  };
}

/** All the text of a message's blocks, for assertions. */
export function blocksText(blocks: unknown): string {
  return JSON.stringify(blocks ?? []);
}
