/**
 * The Slack adapter's entry point for the boot (src/app.ts, through bots/index.ts): a
 * `ChatAdapter` when Slack is configured; otherwise it says what to set and Tollgate runs on.
 */
import type { ChatAdapter, ChatCore, ChatPlatformEntry, Config, HttpRoutes, Logger } from '../../src/chat/index.ts';
import { SlackBot, type SlackBotOptions } from './bot.ts';
import { slackPlatform } from './platform.ts';

export { SlackBot } from './bot.ts';

export interface SlackAdapter extends ChatAdapter {
  readonly bot: SlackBot;
}

/** For the boot (bots/index.ts finds it): Slack's adapter, and its route while unconfigured. */
export const chatPlatform: ChatPlatformEntry = {
  name: 'slack',
  create: (ctx) => createSlackAdapter({ config: ctx.config.slack, core: ctx.core, log: ctx.log }),
  unconfigured: {
    status: 503,
    path: '/slack/events',
    message: 'Slack is not configured here: set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (or SLACK_APP_TOKEN for Socket Mode) and restart.',
  },
};

export function createSlackAdapter(opts: {
  config: Config['slack'];
  /** The chat core; called when a request arrives, so it may be built after the adapters. */
  core: () => ChatCore;
  log: Logger;
  clientOptions?: SlackBotOptions['clientOptions'];
}): SlackAdapter | undefined {
  const { config, log } = opts;
  const missing = [config.signingSecret ? undefined : 'SLACK_SIGNING_SECRET', config.botToken ? undefined : 'SLACK_BOT_TOKEN'].filter(
    (x): x is string => x !== undefined,
  );
  if (!config.botToken || (!config.signingSecret && !config.appToken)) {
    const partly = missing.length < 2 || config.appToken !== undefined;
    (partly ? log.warn.bind(log) : log.info.bind(log))(
      { missing },
      `Slack is off: set ${missing.join(' and ')} to connect a workspace (see docs/slack.md; ` +
        'SLACK_APP_TOKEN for Socket Mode, SLACK_API_URL for GovSlack). Everything else runs without it.',
    );
    return undefined;
  }
  const bot = new SlackBot({
    signingSecret: config.signingSecret ?? '',
    botToken: config.botToken,
    appToken: config.appToken,
    apiUrl: config.apiUrl,
    core: opts.core,
    log,
    clientOptions: opts.clientOptions,
  });
  return {
    bot,
    platform: slackPlatform(bot.client),
    mount: (http: HttpRoutes) => {
      if (bot.receiver) http.mount('POST', '/slack/events', bot.receiver.handle);
    },
    start: async () => {
      await bot.start();
      log.info({ mode: config.appToken ? 'socket' : 'http', apiUrl: config.apiUrl ?? 'https://slack.com/api/' }, 'Slack connected');
    },
    stop: () => bot.stop(),
  };
}
