/**
 * Tollgate's Teams adapter against the Teams fakes (test/fakes/teams): a local Microsoft identity
 * (OpenID metadata, JWKS, a managed-identity token endpoint) and a local Bot Connector. The
 * adapter is configured only through botbuilder's own settings, as in production
 * (UserAssignedMsi with IDENTITY_ENDPOINT/IDENTITY_HEADER in the environment), and every activity
 * sent carries a JWT that botbuilder really validates.
 */
import { intentsCarriedOut } from './intents.ts';
import type pg from 'pg';
import { createTeamsAdapter, type TeamsAdapter } from '../../bots/teams/index.ts';
import type { ChatCore } from '../../src/chat/intake.ts';
import { loadConfig } from '../../src/config/config.ts';
import type { Logger } from '../../src/common/log.ts';
import {
  sendActivity,
  startFakeBotConnector,
  startFakeBotIdentity,
  teamsActivities,
  type Activity,
  type FakeBotConnector,
  type FakeBotIdentity,
  type MintOptions,
} from '../fakes/teams/index.ts';

export interface TeamsParts {
  adapter: TeamsAdapter;
  identity: FakeBotIdentity;
  connector: FakeBotConnector;
  /** Builders of incoming activities whose serviceUrl is the connector fake. */
  act: ReturnType<typeof teamsActivities>;
  /** The app id the tokens are minted for. */
  appId: string;
  /** POSTs an activity to /api/messages with a valid token (or `token`, or none when null). */
  /** Sends an activity; with `settle` (the default), resolves once the worker has carried out what it recorded (test/helpers/intents.ts). */
  send(
    activity: Activity,
    o?: { token?: string | null; mint?: Omit<MintOptions, 'serviceUrl'> & { serviceUrl?: string }; settle?: boolean },
  ): Promise<{ status: number; body: unknown }>;
  stop(): Promise<void>;
}

/**
 * One per test file: @azure/identity keeps the first managed-identity endpoint it sees for the
 * life of the process, so the fakes' environment is set once and never changed.
 */
export async function startTeamsParts(o: { pool: pg.Pool; core: () => ChatCore; log: Logger; url: () => string }): Promise<TeamsParts> {
  const identity = await startFakeBotIdentity();
  const connector = await startFakeBotConnector({ accessToken: identity.accessToken });
  Object.assign(process.env, identity.env());
  // Configured as in production: botbuilder's own keys in the environment, read by loadConfig.
  const env = { ...Object.fromEntries(Object.entries(identity.settings()).map(([k, v]) => [k, String(v)])), TEAMS_SERVICE_URL: connector.url };
  const adapter = createTeamsAdapter({
    config: loadConfig(env).teams,
    core: o.core,
    log: o.log,
  });
  if (!adapter) throw new Error('the Teams adapter was not created');
  const act = teamsActivities({ serviceUrl: connector.url, appId: identity.appId });
  return {
    adapter,
    identity,
    connector,
    act,
    appId: identity.appId,
    send: async (activity, opts = {}) => {
      const token = opts.token === null ? undefined : (opts.token ?? identity.mint({ serviceUrl: String(activity.serviceUrl), ...opts.mint }));
      const res = await sendActivity(o.url(), activity, token);
      if (opts.settle !== false) await intentsCarriedOut(o.pool);
      return res;
    },
    stop: async () => {
      await connector.stop();
      await identity.stop();
    },
  };
}
