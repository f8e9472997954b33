/**
 * Every chat platform Tollgate ships, for the boot (src/app.ts): each configured one becomes a
 * `ChatAdapter`; unconfigured ones say what to set. A new platform is a folder beside slack/ and
 * one line here.
 */
import type { ChatAdapter, ChatCore, Config, Logger } from '../src/chat/index.ts';
import { createSlackAdapter } from './slack/index.ts';
import { createTeamsAdapter, TEAMS_NOT_CONFIGURED } from './teams/index.ts';

export interface AdapterContext {
  config: Config;
  core: () => ChatCore;
  log: Logger;
}

export function createChatAdapters(ctx: AdapterContext): ChatAdapter[] {
  return [
    createSlackAdapter({ config: ctx.config.slack, core: ctx.core, log: ctx.log }),
    createTeamsAdapter({ config: ctx.config.teams, core: ctx.core, log: ctx.log }),
  ].filter((a): a is NonNullable<typeof a> => a !== undefined);
}

/**
 * Routes of platforms that are not configured, with the status and the sentence saying how to
 * turn them on. Teams answers 401: unconfigured, it verifies nobody, so it takes nothing.
 */
export const UNCONFIGURED_ROUTES: { path: string; message: string; platform: string; status: number }[] = [
  {
    platform: 'slack',
    status: 503,
    path: '/slack/events',
    message: 'Slack is not configured here: set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (or SLACK_APP_TOKEN for Socket Mode) and restart.',
  },
  { platform: 'teams', status: 401, path: '/api/messages', message: TEAMS_NOT_CONFIGURED },
];
