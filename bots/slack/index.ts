/**
 * The Slack adapter's entry point for the boot (src/app.ts): build it when Slack is configured,
 * otherwise say what to set and let the rest of Tollgate run.
 */
import type pg from 'pg';
import type { Config } from '../../src/config.ts';
import type { Logger } from '../../src/log.ts';
import type { ProjectConfig } from '../../src/project-config.ts';
import type { WorkflowRegistry } from '../../src/runtime/registry.ts';
import type { Runtime } from '../../src/runtime/runtime.ts';
import type { HttpServer } from '../../src/server/http.ts';
import { SlackBot, type SlackBotOptions } from './bot.ts';
import { createDeliverer, type SlackDeliverer } from './deliver.ts';
import { listRunApprovals } from '../../src/approvals/index.ts';
import { runMessageApprovals } from './approvals.ts';

export { SlackBot } from './bot.ts';
export { createDeliverer } from './deliver.ts';

export interface SlackAdapter {
  readonly bot: SlackBot;
  readonly deliverer: SlackDeliverer;
  /** Mounts `POST /slack/events` (HTTP mode; Socket Mode needs no route). */
  mount(http: HttpServer): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createSlackAdapter(opts: {
  config: Config['slack'];
  pool: pg.Pool;
  runtime: Runtime;
  registry: WorkflowRegistry;
  project: Pick<ProjectConfig, 'operators'>;
  log: Logger;
  clientOptions?: SlackBotOptions['clientOptions'];
  /** How long before an approval's deadline approvers are reminded (default 1 h; at most half-way). */
  reminderLeadMs?: number;
}): SlackAdapter | undefined {
  const { config, log } = opts;
  const missing = [
    config.signingSecret ? undefined : 'SLACK_SIGNING_SECRET',
    config.botToken ? undefined : 'SLACK_BOT_TOKEN',
  ].filter((x): x is string => x !== undefined);
  if (!config.botToken || (!config.signingSecret && !config.appToken)) {
    const partly = missing.length < 2 || config.appToken !== undefined;
    (partly ? log.warn.bind(log) : log.info.bind(log))(
      { missing },
      `Slack is off: set ${missing.join(' and ')} to connect a workspace (see "Connect a Slack workspace" in the README; ` +
        'SLACK_APP_TOKEN for Socket Mode, SLACK_API_URL for GovSlack). Everything else runs without it.',
    );
    return undefined;
  }
  const bot = new SlackBot({
    signingSecret: config.signingSecret ?? '',
    botToken: config.botToken,
    appToken: config.appToken,
    apiUrl: config.apiUrl,
    pool: opts.pool,
    runtime: opts.runtime,
    registry: opts.registry,
    project: opts.project,
    log,
    clientOptions: opts.clientOptions,
  });
  const deliverer = createDeliverer({
    pool: opts.pool,
    client: bot.client,
    log,
    loadApprovals: async (q, runId) => runMessageApprovals(await listRunApprovals(q, runId)),
    reminderLeadMs: opts.reminderLeadMs ?? config.approvalReminderLeadMs,
  });
  return {
    bot,
    deliverer,
    mount: (http) => {
      if (bot.receiver) http.mount('POST', '/slack/events', bot.receiver.handle);
    },
    start: async () => {
      await bot.start();
      log.info({ mode: config.appToken ? 'socket' : 'http', apiUrl: config.apiUrl ?? 'https://slack.com/api/' }, 'Slack connected');
    },
    stop: () => bot.stop(),
  };
}
