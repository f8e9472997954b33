/**
 * Teams as a `ChatPlatform` (src/chat/platform.ts): Adaptive Card rendering (cards.ts) and the
 * Bot Connector calls the outbox makes: send (or reply in a channel thread), update in place,
 * create a personal conversation with an approver, and which connector errors are worth retrying.
 *
 * A message's `address` is `{ serviceUrl }`, stored with it, so an update months later goes to the
 * same Bot Connector. A person's personal conversation comes from the directory (directory.ts);
 * for someone Tollgate never heard from it is created with their AAD object id and the tenant,
 * first without a message: Teams answers a `createConversation` that carries one without its
 * activity id, and that copy could never be updated.
 */
import type { Activity } from 'botbuilder';
import {
  TollgateError,
  type ChatPlatform,
  type DeliveryFailure,
  type Destination,
  type Posted,
  type Principal,
  type Rendered,
  type TeamsDirectory,
} from '../../src/chat/index.ts';
import type { TeamsCloudAdapter } from './adapter.ts';
import { cardOf, renderTeams } from './cards.ts';

/** What a Teams message row keeps in `address`. */
export interface TeamsAddress {
  serviceUrl: string;
}

const CARD = 'application/vnd.microsoft.card.adaptive';

export function cardActivity(message: Rendered): Partial<Activity> {
  return { type: 'message', summary: message.text, attachments: [{ contentType: CARD, content: cardOf(message) }] };
}

/** Connector errors (botframework-connector's RestError: `statusCode`, `response.headers`) as outbox decisions. */
export function classifyTeamsError(e: unknown): DeliveryFailure {
  const err = e as { statusCode?: number; code?: string; message?: string; response?: { headers?: { get?(name: string): string | undefined } } };
  const reason = err.message ?? String(e);
  const status = err.statusCode;
  if (status === 429 || status === 503) {
    const after = err.response?.headers?.get?.('retry-after');
    const retryAfterMs = retryAfterToMs(after);
    return {
      kind: 'retry',
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      reason: `HTTP ${status}${after ? `; Retry-After ${after}` : ''}: ${reason}`,
    };
  }
  // Gone or refused for good: the conversation or message is gone (404), the bot was removed or
  // may not post there (403), the card is invalid or too big (400, 413).
  if (status === 400 || status === 403 || status === 404 || status === 413) return { kind: 'permanent', code: err.code ?? `http_${status}`, reason };
  // 401 (a token the connector did not take yet), 5xx, timeouts and a network that is down: later may work.
  return { kind: 'retry', reason };
}

function retryAfterToMs(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs)) return Math.max(0, secs) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export function teamsPlatform(o: { adapter: TeamsCloudAdapter; directory: () => TeamsDirectory; defaultServiceUrl: string }): ChatPlatform {
  const { adapter } = o;

  /** The Bot Connector for a destination: its own, else its tenant's, else the configured default. */
  async function serviceUrlOf(to: Pick<Destination, 'address' | 'tenant'>): Promise<string> {
    const own = (to.address as Partial<TeamsAddress> | null)?.serviceUrl;
    if (own) return own;
    return (to.tenant ? await o.directory().tenantServiceUrl(to.tenant) : undefined) ?? o.defaultServiceUrl;
  }

  async function openDm(to: Principal): Promise<{ conversation: string; address: TeamsAddress }> {
    const contact = await o.directory().contact(to.tenant, to.user);
    const serviceUrl = await serviceUrlOf({ address: contact?.serviceUrl ? { serviceUrl: contact.serviceUrl } : null, tenant: to.tenant });
    if (contact?.conversationId) return { conversation: contact.conversationId, address: { serviceUrl } };
    const connector = await adapter.connector(serviceUrl);
    const created = await connector.createConversation({
      isGroup: false,
      bot: { id: `28:${adapter.appId}`, name: 'Tollgate' },
      members: [{ id: contact?.userId ?? to.user, name: contact?.name ?? '', aadObjectId: to.user }],
      tenantId: to.tenant,
      channelData: { tenant: { id: to.tenant } },
    });
    if (!created.id)
      throw Object.assign(
        new TollgateError('TG_CHAT_PLATFORM_BAD_ANSWER', `createConversation with ${to.user} returned no conversation id`, { user: to.user }),
        { statusCode: 502 },
      ); // classifyTeamsError reads statusCode: retried
    await o.directory().rememberPersonalConversation(to.tenant, to.user, created.id, serviceUrl);
    return { conversation: created.id, address: { serviceUrl } };
  }

  return {
    name: 'teams',
    render: renderTeams,

    async post(to: Destination, message: Rendered): Promise<Posted> {
      // Teams has no message that only one person in a shared conversation sees: a reply meant for
      // one person goes to their personal chat with the bot instead.
      const target = to.visibleTo ? await openDm(to.visibleTo) : { conversation: to.conversation, address: { serviceUrl: await serviceUrlOf(to) } };
      const connector = await adapter.connector(target.address.serviceUrl);
      const activity = cardActivity(message);
      const res =
        to.thread && !to.visibleTo
          ? await connector.replyToActivity(target.conversation, to.thread, activity)
          : await connector.sendToConversation(target.conversation, activity);
      return { messageId: res.id ?? null, address: target.address, ...(to.visibleTo ? {} : { conversation: target.conversation }) };
    },

    async update(to, message) {
      const connector = await adapter.connector(await serviceUrlOf(to));
      await connector.updateActivity(to.conversation, to.messageId, { ...cardActivity(message), id: to.messageId });
    },

    openDm,
    classify: classifyTeamsError,
  };
}
