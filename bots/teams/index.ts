/**
 * The Teams adapter's entry point for the boot (src/app.ts, through bots/index.ts): a
 * `ChatAdapter` when a bot identity is configured (MicrosoftAppId), or, for the Bot Framework
 * Emulator, when TEAMS_ALLOW_UNAUTHENTICATED=true says to take unauthenticated traffic (logged
 * loudly). Otherwise there is no adapter and `POST /api/messages` answers 401 saying what to set.
 */
import type { ChatAdapter, ChatCore, ChatPlatformEntry, Config, HttpRoutes, Logger } from '../../src/chat/index.ts';
import { TeamsCloudAdapter } from './adapter.ts';
import { TeamsBot } from './bot.ts';
import { teamsPlatform } from './platform.ts';

/** Where proactive messages go in a tenant Tollgate has not heard from yet (Microsoft's global Teams endpoint). */
export const DEFAULT_SERVICE_URL = 'https://smba.trafficmanager.net/teams/';

export const TEAMS_NOT_CONFIGURED =
  'Teams is not configured here: set MicrosoftAppId (and MicrosoftAppPassword, or MicrosoftAppType=UserAssignedMsi), see docs/teams.md; ' +
  'for the Bot Framework Emulator only, TEAMS_ALLOW_UNAUTHENTICATED=true.';

export interface TeamsAdapter extends ChatAdapter {
  readonly bot: TeamsBot;
  readonly adapter: TeamsCloudAdapter;
}

/** For the boot (bots/index.ts finds it): Teams' adapter, and its route while unconfigured (401: unconfigured, it verifies nobody, so it takes nothing). */
export const chatPlatform: ChatPlatformEntry = {
  name: 'teams',
  create: (ctx) => createTeamsAdapter({ config: ctx.config.teams, core: ctx.core, log: ctx.log }),
  unconfigured: { status: 401, path: '/api/messages', message: TEAMS_NOT_CONFIGURED },
};

export function createTeamsAdapter(opts: { config: Config['teams']; core: () => ChatCore; log: Logger }): TeamsAdapter | undefined {
  const { config, log } = opts;
  if (!config.appId) {
    if (!config.allowUnauthenticated) {
      log.info('Teams is off: set MicrosoftAppId to connect a tenant (see docs/teams.md). Everything else runs without it.');
      return undefined;
    }
    log.warn(
      'TEAMS_ALLOW_UNAUTHENTICATED=true and no MicrosoftAppId: POST /api/messages takes requests WITHOUT verifying who sent them. ' +
        'Use this only with the Bot Framework Emulator on your own machine, never on a reachable address.',
    );
  }
  const adapter = new TeamsCloudAdapter(config.botFrameworkSettings);
  const bot = new TeamsBot({ adapter, core: opts.core, log });
  return {
    bot,
    adapter,
    platform: teamsPlatform({ adapter, directory: () => opts.core().teamsDirectory, defaultServiceUrl: config.serviceUrl ?? DEFAULT_SERVICE_URL }),
    mount: (http: HttpRoutes) => http.mount('POST', '/api/messages', bot.handle),
    start: async () => {
      log.info({ appId: config.appId ?? '(none: unauthenticated)', appType: config.appType ?? 'MultiTenant' }, 'Teams connected');
    },
    stop: async () => {},
  };
}
