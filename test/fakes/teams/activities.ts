/**
 * Incoming Teams activities as the msteams channel posts them to a bot's `/api/messages`, and a
 * sender. Shapes follow real Teams payloads (ids `29:…` for users, `28:<appId>` for the bot,
 * `a:…` personal / `19:…@thread.v2` group chat / `19:…@thread.tacv2` channel conversations, the
 * tenant both in `conversation.tenantId` and `channelData.tenant.id`), trimmed to what a bot
 * reads. `serviceUrl` is the connector fake's URL, so the bot's answers land there, and it must
 * equal the `serviceurl` claim of the token sent along (identity fake `mint({ serviceUrl })`).
 */
import crypto from 'node:crypto';

export interface TeamsUser {
  /** `29:…`, the per-bot user id. */
  id: string;
  /** The Entra ID object id, the stable identity. */
  aadObjectId: string;
  name?: string;
}

export interface TeamsConversation {
  id: string;
  conversationType: 'personal' | 'groupChat' | 'channel';
  name?: string;
  /** Channel conversations: the team (`channelData.team`). */
  teamId?: string;
}

export interface ActivityContext {
  /** The connector fake's URL. */
  serviceUrl: string;
  appId: string;
  botName?: string;
  locale?: string;
}

export interface MessageOptions {
  text: string;
  from: TeamsUser;
  tenant: string;
  conversation: TeamsConversation;
  /** Prefix the text with `<at>Tollgate</at>` and add the mention entity (needed in channels). */
  mentionBot?: boolean;
  /** Action.Submit data arrives as a message with `value`. */
  value?: unknown;
  replyToId?: string;
  id?: string;
}

export interface InvokeOptions {
  verb: string;
  data?: Record<string, unknown>;
  from: TeamsUser;
  tenant: string;
  conversation: TeamsConversation;
  /** The id of the message that holds the card (the one to update). */
  replyToId?: string;
}

export interface MembershipOptions {
  tenant: string;
  conversation: TeamsConversation;
  /** Who installed or added; defaults to a made-up user. */
  from?: TeamsUser;
  /** Defaults to the bot itself (what Teams sends when the app is installed). */
  membersAdded?: { id: string; aadObjectId?: string }[];
  action?: 'add' | 'remove';
}

export type Activity = Record<string, unknown>;

export const newUser = (name = 'Ada Lovelace'): TeamsUser & { name: string } => ({
  id: `29:1${crypto.randomBytes(24).toString('base64url')}`,
  aadObjectId: crypto.randomUUID(),
  name,
});

export const newConversation = (conversationType: TeamsConversation['conversationType'], teamId?: string): TeamsConversation => {
  const hex = crypto.randomBytes(16).toString('hex');
  if (conversationType === 'personal') return { id: `a:1${crypto.randomBytes(24).toString('base64url')}`, conversationType };
  if (conversationType === 'groupChat') return { id: `19:${hex}@thread.v2`, conversationType };
  return { id: `19:${hex}@thread.tacv2`, conversationType, teamId: teamId ?? `19:${crypto.randomBytes(16).toString('hex')}@thread.tacv2` };
};

export function teamsActivities(ctx: ActivityContext) {
  const botName = ctx.botName ?? 'Tollgate';
  const bot = { id: `28:${ctx.appId}`, name: botName };
  let seq = 0;
  const base = (type: string, from: TeamsUser, tenant: string, c: TeamsConversation, id?: string): Activity => ({
    type,
    id: id ?? `f:${Date.now()}${++seq}`,
    timestamp: new Date().toISOString(),
    channelId: 'msteams',
    serviceUrl: ctx.serviceUrl,
    from: { id: from.id, name: from.name, aadObjectId: from.aadObjectId },
    recipient: bot,
    conversation: {
      id: c.id,
      conversationType: c.conversationType,
      tenantId: tenant,
      ...(c.conversationType === 'personal' ? {} : { isGroup: true }),
      ...(c.name ? { name: c.name } : {}),
    },
    channelData: {
      tenant: { id: tenant },
      ...(c.conversationType === 'channel' ? { team: { id: c.teamId }, channel: { id: c.id.split(';')[0] } } : {}),
    },
    locale: ctx.locale ?? 'en-US',
    entities: [{ type: 'clientInfo', locale: ctx.locale ?? 'en-US', country: 'US', platform: 'Web' }],
  });

  return {
    bot,
    message(o: MessageOptions): Activity {
      const a = base('message', o.from, o.tenant, o.conversation, o.id ?? String(Date.now() + ++seq));
      const at = `<at>${botName}</at>`;
      a.text = o.mentionBot ? `${at} ${o.text}` : o.text;
      a.textFormat = 'plain';
      if (o.mentionBot) (a.entities as unknown[]).push({ type: 'mention', text: at, mentioned: bot });
      if (o.value !== undefined) a.value = o.value;
      if (o.replyToId) a.replyToId = o.replyToId;
      return a;
    },
    /** A Universal Actions (`Action.Execute`) invoke; the bot answers it in the HTTP response. */
    invoke(o: InvokeOptions): Activity {
      const a = base('invoke', o.from, o.tenant, o.conversation);
      a.name = 'adaptiveCard/action';
      a.value = { action: { type: 'Action.Execute', verb: o.verb, data: o.data ?? {} }, trigger: 'manual' };
      if (o.replyToId) {
        a.replyToId = o.replyToId;
        (a.channelData as Activity).legacy = { replyToId: o.replyToId };
      }
      (a.channelData as Activity).source = { name: 'message' };
      return a;
    },
    /** The app was installed into (`add`) or removed from (`remove`) a scope. */
    installationUpdate(o: MembershipOptions): Activity {
      const a = base('installationUpdate', o.from ?? newUser('Installer'), o.tenant, o.conversation);
      a.action = o.action ?? 'add';
      return a;
    },
    /** Members (by default the bot) joined the conversation. */
    conversationUpdate(o: MembershipOptions): Activity {
      const a = base('conversationUpdate', o.from ?? newUser('Installer'), o.tenant, o.conversation);
      a.membersAdded = o.membersAdded ?? [{ id: bot.id }];
      if (o.conversation.conversationType === 'channel') (a.channelData as Activity).eventType = 'teamMemberAdded';
      return a;
    },
  };
}

/** POST an activity to `<botUrl>/api/messages`, as the channel does. */
export async function sendActivity(botUrl: string, activity: Activity, token: string | undefined): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${botUrl.replace(/\/+$/, '')}/api/messages`, { method: 'POST', headers, body: JSON.stringify(activity) });
  const text = await res.text();
  let body: unknown = text || undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body };
}
