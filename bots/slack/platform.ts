/**
 * Slack as a `ChatPlatform` (src/chat/platform.ts): Block Kit rendering and the Web API calls the
 * outbox makes (chat.postMessage, chat.update, chat.postEphemeral, conversations.open,
 * views.publish), users.info for people's names, and which Slack errors are worth retrying.
 *
 * The Web API client is built with `rejectRateLimitedCalls`, so a 429 comes back at once with
 * Slack's `Retry-After` for the outbox to honour, instead of the client sleeping inside a job.
 */
import { webApi } from '@slack/bolt';
import {
  TollgateError,
  type ChatPlatform,
  type DeliveryFailure,
  type Destination,
  type HomeView,
  type Posted,
  type Principal,
  type Rendered,
} from '../../src/chat/index.ts';
import { pendingApprovalBlocks } from './approvals.ts';
import { LIMITS, renderRunList } from './blocks.ts';
import { fromRendered, renderSlack, toRendered } from './render.ts';

type WebClient = InstanceType<typeof webApi.WebClient>;

/** Slack errors (`ok: false`) that a later attempt may get past; every other `ok: false` is for good. */
const TRANSIENT = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout', 'ratelimited']);

export function classifySlackError(e: unknown): DeliveryFailure {
  const err = e as { code?: string; retryAfter?: unknown; data?: { error?: string }; message?: string };
  const reason = err.message ?? String(e);
  if (err.code === webApi.ErrorCode.RateLimitedError && typeof err.retryAfter === 'number') {
    return { kind: 'retry', retryAfterMs: Math.max(1, err.retryAfter) * 1000, reason: `rate limited; Retry-After ${err.retryAfter} s` };
  }
  if (err.code === webApi.ErrorCode.PlatformError) {
    const code = err.data?.error ?? 'unknown_error';
    return TRANSIENT.has(code) ? { kind: 'retry', reason } : { kind: 'permanent', code, reason };
  }
  // HTTP errors (5xx), timeouts, a network that is down: Slack may be back later.
  return { kind: 'retry', reason };
}

export function slackPlatform(client: WebClient): ChatPlatform {
  return {
    name: 'slack',
    render: (view) => toRendered(renderSlack(view)),

    async post(to: Destination, message: Rendered): Promise<Posted> {
      const { text, blocks } = fromRendered(message);
      const thread = to.thread ? { thread_ts: to.thread } : {};
      if (to.visibleTo) {
        // Seen by one person only; it cannot be updated later.
        const res = await client.chat.postEphemeral({ channel: to.conversation, user: to.visibleTo.user, text, blocks, ...thread });
        return { messageId: res.message_ts ?? null };
      }
      const res = await client.chat.postMessage({ channel: to.conversation, text, blocks, ...thread, unfurl_links: false });
      return { messageId: res.ts ?? null, ...(res.channel ? { conversation: res.channel } : {}) };
    },

    async update(to, message) {
      const { text, blocks } = fromRendered(message);
      await client.chat.update({ channel: to.conversation, ts: to.messageId, text, blocks });
    },

    async openDm(to: Principal) {
      const open = await client.conversations.open({ users: to.user });
      const channel = open.channel?.id;
      if (!channel) throw new TollgateError('TG_CHAT_PLATFORM_BAD_ANSWER', `conversations.open with ${to.user} returned no channel`, { user: to.user });
      return { conversation: channel };
    },

    classify: classifySlackError,

    /** users.info: the name Slack shows for the person (their display name, else their full name). */
    async displayName(who: Principal) {
      const res = await client.users.info({ user: who.user });
      const u = res.user;
      const name = [u?.profile?.display_name, u?.real_name, u?.profile?.real_name].find((n) => typeof n === 'string' && n.trim() !== '');
      return name?.trim();
    },

    async publishHome(to: Principal, home: HomeView) {
      const list = renderRunList(home.runs, 'Your recent runs');
      const approvals = pendingApprovalBlocks(home.approvals, LIMITS.blocksPerView - list.blocks.length - 2);
      await client.views.publish({
        user_id: to.user,
        view: {
          type: 'home',
          blocks: [
            ...approvals,
            ...list.blocks,
            {
              type: 'context',
              elements: [{ type: 'mrkdwn', text: 'Start one with `/tollgate run <workflow> key=value …`; `/tollgate help` lists workflows.' }],
            },
          ],
        },
      });
    },
  };
}
