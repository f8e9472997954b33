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

export class TeamsCloudAdapter extends CloudAdapter {
  readonly appId: string;
  readonly #clients = new Map<string, Promise<Conversations>>();

  constructor(settings: Readonly<Record<string, string>>) {
    super(new ConfigurationBotFrameworkAuthentication({ ...settings }));
    this.appId = settings.MicrosoftAppId ?? '';
  }

  /** botbuilder's validation of an incoming activity's token; throws on any failure. */
  async authenticate(activity: Activity, authorization: string): Promise<void> {
    await this.botFrameworkAuthentication.authenticateRequest(activity, authorization);
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
