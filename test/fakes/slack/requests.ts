/**
 * Requests shaped and signed exactly as Slack sends them (PROTOCOLS.md "Request signing" and
 * "Bodies"): `X-Slack-Request-Timestamp` and `X-Slack-Signature: v0=<hex HMAC-SHA256 of
 * "v0:<timestamp>:<raw body>">`; slash commands and interactions form-encoded with content type
 * exactly `application/x-www-form-urlencoded` (interactions in a `payload` field), Events API
 * deliveries as JSON.
 */
import { createHmac, randomBytes } from 'node:crypto';

export function signSlackRequest(signingSecret: string, body: string, timestampSec = Math.floor(Date.now() / 1000)): Record<string, string> {
  const sig = createHmac('sha256', signingSecret).update(`v0:${timestampSec}:${body}`).digest('hex');
  return { 'x-slack-request-timestamp': String(timestampSec), 'x-slack-signature': `v0=${sig}` };
}

export interface SlackRequest {
  body: string;
  contentType: 'application/x-www-form-urlencoded' | 'application/json';
}

export interface SendOptions {
  signingSecret: string;
  /** Override the signature (bad-signature tests). */
  signature?: string;
  timestampSec?: number;
  headers?: Record<string, string>;
}

export interface SlackResponse {
  status: number;
  text: string;
  json(): unknown;
}

export async function sendToSlackEndpoint(url: string, req: SlackRequest, o: SendOptions): Promise<SlackResponse> {
  const signed = signSlackRequest(o.signingSecret, req.body, o.timestampSec);
  if (o.signature) signed['x-slack-signature'] = o.signature;
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': req.contentType, ...signed, ...o.headers }, body: req.body });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) as unknown };
}

export const ids = {
  trigger: () => `${Date.now()}.${randomBytes(4).readUInt32BE()}.${randomBytes(8).toString('hex')}`,
  event: () => `Ev${randomBytes(6).toString('hex').toUpperCase()}`,
};

export interface Who {
  userId: string;
  teamId: string;
  enterpriseId?: string;
}

export function slashCommand(o: Who & { text: string; channelId: string; command?: string; triggerId?: string; apiAppId?: string }): SlackRequest {
  const fields: Record<string, string> = {
    token: 'deprecated-verification-token',
    team_id: o.teamId,
    team_domain: 'fake',
    channel_id: o.channelId,
    channel_name: 'general',
    user_id: o.userId,
    user_name: o.userId.toLowerCase(),
    command: o.command ?? '/tollgate',
    text: o.text,
    api_app_id: o.apiAppId ?? 'A0001',
    is_enterprise_install: 'false',
    response_url: 'https://hooks.slack.test/commands/T0001/1/abc',
    trigger_id: o.triggerId ?? ids.trigger(),
  };
  if (o.enterpriseId) fields.enterprise_id = o.enterpriseId;
  return { body: new URLSearchParams(fields).toString(), contentType: 'application/x-www-form-urlencoded' };
}

function interaction(payload: Record<string, unknown>): SlackRequest {
  return { body: new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), contentType: 'application/x-www-form-urlencoded' };
}

export function blockAction(
  o: Who & {
    actionId: string;
    value: string;
    channelId: string;
    messageTs: string;
    blockId?: string;
    triggerId?: string;
    threadTs?: string;
    fromHome?: boolean;
  },
): SlackRequest {
  if (o.fromHome) {
    // A click on the App Home tab: the container is the view; there is no channel or message.
    return interaction({
      type: 'block_actions',
      user: { id: o.userId, username: o.userId.toLowerCase(), name: o.userId.toLowerCase(), team_id: o.teamId },
      api_app_id: 'A0001',
      token: 'deprecated-verification-token',
      container: { type: 'view', view_id: 'V0HOME0001' },
      trigger_id: o.triggerId ?? ids.trigger(),
      team: { id: o.teamId, domain: 'fake' },
      enterprise: o.enterpriseId ? { id: o.enterpriseId, name: 'Fake Org' } : null,
      is_enterprise_install: false,
      view: { id: 'V0HOME0001', type: 'home', blocks: [], state: { values: {} } },
      state: { values: {} },
      actions: [
        {
          action_id: o.actionId,
          block_id: o.blockId ?? 'b',
          text: { type: 'plain_text', text: o.actionId, emoji: true },
          value: o.value,
          type: 'button',
          action_ts: `${Date.now() / 1000}`,
        },
      ],
    });
  }
  return interaction({
    type: 'block_actions',
    user: { id: o.userId, username: o.userId.toLowerCase(), name: o.userId.toLowerCase(), team_id: o.teamId },
    api_app_id: 'A0001',
    token: 'deprecated-verification-token',
    container: { type: 'message', message_ts: o.messageTs, channel_id: o.channelId, is_ephemeral: false, ...(o.threadTs ? { thread_ts: o.threadTs } : {}) },
    trigger_id: o.triggerId ?? ids.trigger(),
    team: { id: o.teamId, domain: 'fake' },
    enterprise: o.enterpriseId ? { id: o.enterpriseId, name: 'Fake Org' } : null,
    is_enterprise_install: false,
    channel: { id: o.channelId, name: 'general' },
    message: { type: 'message', ts: o.messageTs, text: '', blocks: [] },
    state: { values: {} },
    response_url: 'https://hooks.slack.test/actions/T0001/1/abc',
    actions: [
      {
        action_id: o.actionId,
        block_id: o.blockId ?? 'b',
        text: { type: 'plain_text', text: o.actionId, emoji: true },
        value: o.value,
        type: 'button',
        action_ts: `${Date.now() / 1000}`,
      },
    ],
  });
}

export function viewSubmission(
  o: Who & { callbackId: string; privateMetadata: string; values: Record<string, Record<string, unknown>>; viewId?: string },
): SlackRequest {
  return interaction({
    type: 'view_submission',
    team: { id: o.teamId, domain: 'fake' },
    user: { id: o.userId, username: o.userId.toLowerCase(), name: o.userId.toLowerCase(), team_id: o.teamId },
    api_app_id: 'A0001',
    token: 'deprecated-verification-token',
    trigger_id: ids.trigger(),
    enterprise: null,
    is_enterprise_install: false,
    view: {
      id: o.viewId ?? `V${randomBytes(4).toString('hex').toUpperCase()}`,
      team_id: o.teamId,
      type: 'modal',
      callback_id: o.callbackId,
      private_metadata: o.privateMetadata,
      state: { values: o.values },
      hash: '1.abc',
      app_id: 'A0001',
      bot_id: 'BBOT0001',
    },
    response_urls: [],
  });
}

export function eventCallback(o: Who & { event: Record<string, unknown>; eventId?: string }): SlackRequest {
  const body = {
    token: 'deprecated-verification-token',
    team_id: o.teamId,
    api_app_id: 'A0001',
    event: o.event,
    type: 'event_callback',
    event_id: o.eventId ?? ids.event(),
    event_time: Math.floor(Date.now() / 1000),
    authorizations: [{ enterprise_id: o.enterpriseId ?? null, team_id: o.teamId, user_id: 'UBOT0001', is_bot: true, is_enterprise_install: false }],
    is_ext_shared_channel: false,
  };
  return { body: JSON.stringify(body), contentType: 'application/json' };
}
