/**
 * botbuilder's `CloudAdapter`, configured only by botbuilder's own settings
 * (`ConfigurationBotFrameworkAuthentication`: MicrosoftAppId, MicrosoftAppType incl.
 * UserAssignedMsi, the OpenID metadata, issuer and token endpoints …, passed through unchanged).
 * It does two jobs for Tollgate:
 *
 * - `authenticate(activity, header)`: botbuilder's own validation of the channel's JWT. Every
 *   failure is thrown, and the intake answers 401 for all of them: `CloudAdapter.process` alone
 *   answers 500 for a forged signature, `alg: none` or a future `nbf`.
 * - `connector(serviceUrl)`: the Bot Connector client the outbox posts with, authenticated as the
 *   bot (a password, a certificate or a managed identity through IDENTITY_ENDPOINT, as configured).
 *   Its own retry policy is removed: it would wait out `Retry-After` inside a delivery job (3
 *   tries), and the outbox owns every wait (src/chat/deliver.ts).
 *
 * Incoming activities are not run through a turn pipeline: nothing is sent in a turn. A message
 * becomes an intent, its answers are rows of the outbox; an invoke is answered in its HTTP
 * response (bot.ts).
 */
import { CloudAdapter, ConfigurationBotFrameworkAuthentication, type Activity, type ConversationParameters } from 'botbuilder';

/** The Bot Connector operations Tollgate uses (botframework-connector's `ConnectorClient.conversations`). */
export interface Conversations {
  sendToConversation(conversationId: string, activity: Partial<Activity>): Promise<{ id?: string }>;
  replyToActivity(conversationId: string, activityId: string, activity: Partial<Activity>): Promise<{ id?: string }>;
  updateActivity(conversationId: string, activityId: string, activity: Partial<Activity>): Promise<{ id?: string }>;
  createConversation(parameters: ConversationParameters): Promise<{ id?: string; activityId?: string; serviceUrl?: string }>;
}

interface ConnectorClientLike {
  conversations: Conversations;
  client?: { pipeline?: { removePolicy(p: { phase: string }): unknown } };
}

/** How many verified tokens are remembered at most (the oldest goes first); a channel uses a few per hour. */
const VERIFIED_TOKENS_KEPT = 1000;

/** The `exp` of a JWT that botbuilder has just verified, in ms; undefined if it has none (then it is not remembered). */
function expiryMs(authorization: string): number | undefined {
  const payload = authorization.replace(/^Bearer\s+/i, '').split('.')[1];
  if (!payload) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export class TeamsCloudAdapter extends CloudAdapter {
  readonly appId: string;
  readonly #clients = new Map<string, Promise<Conversations>>();

  constructor(settings: Readonly<Record<string, string>>) {
    super(new ConfigurationBotFrameworkAuthentication({ ...settings }));
    this.appId = settings.MicrosoftAppId ?? '';
  }

  /**
   * botbuilder's validation of an incoming activity's token; throws on any failure. A token that
   * passed is remembered, with what botbuilder checked it against besides itself (the activity's
   * channel and service URL), until the `exp` it carries: the channel sends the same token with
   * every activity for up to an hour, and verifying its RS256 signature, issuer, audience and
   * endorsements again each time is the largest part of answering an invoke. Anything else (another
   * token, the same token for another service URL or channel, after its `exp`) is validated by
   * botbuilder afresh.
   */
  async authenticate(activity: Activity, authorization: string): Promise<void> {
    const key = `${activity.channelId ?? ''}\n${activity.serviceUrl ?? ''}\n${authorization}`;
    const until = this.#verified.get(key);
    if (until !== undefined && Date.now() < until) return;
    if (until !== undefined) this.#verified.delete(key);
    await this.botFrameworkAuthentication.authenticateRequest(activity, authorization);
    this.#remember(key, authorization);
  }

  /** Tokens that passed, by channel, service URL and token, with when each stops being taken as verified (ms). */
  readonly #verified = new Map<string, number>();

  #remember(key: string, authorization: string): void {
    const exp = expiryMs(authorization);
    if (exp === undefined || exp <= Date.now()) return;
    if (this.#verified.size >= VERIFIED_TOKENS_KEPT) {
      for (const [k, until] of this.#verified) if (until <= Date.now()) this.#verified.delete(k);
      if (this.#verified.size >= VERIFIED_TOKENS_KEPT) this.#verified.delete(this.#verified.keys().next().value as string);
    }
    this.#verified.set(key, exp);
  }

  /** The connector for one service URL, made once per process (its credentials refresh their own token). */
  connector(serviceUrl: string): Promise<Conversations> {
    let client = this.#clients.get(serviceUrl);
    if (!client) {
      client = this.#createConnector(serviceUrl);
      client.catch(() => this.#clients.delete(serviceUrl));
      this.#clients.set(serviceUrl, client);
    }
    return client;
  }

  async #createConnector(serviceUrl: string): Promise<Conversations> {
    const factory = this.botFrameworkAuthentication.createConnectorFactory(this.createClaimsIdentity(this.appId));
    const client = (await factory.create(serviceUrl, undefined)) as unknown as ConnectorClientLike;
    // The outbox retries with the platform's Retry-After; the SDK must not wait inside a job.
    client.client?.pipeline?.removePolicy({ phase: 'Retry' });
    return client.conversations;
  }
}
