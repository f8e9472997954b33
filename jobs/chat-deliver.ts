/**
 * Task `chat-deliver`: bring one chat message (or a person's home page) up to date with the state
 * in the database, on whichever platform it lives (the outbox; see src/chat/deliver.ts). Enqueued
 * by the events trigger for runs started from a chat (job key `chat:run:<runId>`, so bursts
 * coalesce) and by the chat layer for replies, approval copies and home pages. The payload is
 * checked at run time because jobs are added from SQL.
 */
import { z } from 'zod';
import type { Task } from 'graphile-worker';
import type { ChatDeliverer } from '../src/chat/deliver.ts';
import { TollgateError } from '../src/common/errors.ts';

export const identifier = 'chat-deliver';

const payloadSchema = z.union([
  z.object({ runId: z.string().min(1) }),
  z.object({ messageId: z.string().min(1) }),
  z.object({ approvalId: z.string().min(1) }),
  z.object({ home: z.object({ platform: z.string().min(1), tenant: z.string().min(1), user: z.string().min(1) }) }),
]);

export function makeChatDeliver(chat: ChatDeliverer | undefined): Task {
  return async (payload, helpers) => {
    const parsed = payloadSchema.safeParse(payload);
    if (!parsed.success) {
      helpers.logger.error(
        `chat-deliver job ${helpers.job.id} has a malformed payload ${JSON.stringify(payload)}; expected {"runId"}, {"messageId"}, {"approvalId"} or {"home"}`,
      );
      return;
    }
    if (!chat) {
      // Fail (and so retry later) rather than drop: the message catches up once chat is set up here.
      throw new TollgateError(
        'TG_CHAT_NOT_CONFIGURED',
        'No chat platform is set up in this worker, so chat messages wait; configure one (see docs/slack.md or docs/teams.md) and they catch up.',
      );
    }
    const p = parsed.data;
    if ('runId' in p) await chat.deliverRun(p.runId);
    else if ('messageId' in p) await chat.deliverMessage(p.messageId);
    else if ('approvalId' in p) await chat.deliverApproval(p.approvalId);
    else await chat.deliverHome(p.home);
  };
}
