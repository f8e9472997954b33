/**
 * Task `chat-approval-remind`: an approval's deadline is near; remind the approvers who have not
 * decided yet, on whatever platform their DM copy is (a reply under it, through the outbox).
 * Scheduled by the approval's delivery (src/chat/deliver.ts) at `expires_at` minus the lead time,
 * job key `chat:remind:<approvalId>`; it does nothing for an approval that is no longer pending,
 * and each approver is reminded once (`chat_messages.reminded_at`). Platforms drop events during
 * incidents, so the reminder does not depend on any of them arriving.
 */
import { z } from 'zod';
import type { Task } from 'graphile-worker';
import type { ChatDeliverer } from '../src/chat/deliver.ts';
import { TollgateError } from '../src/common/errors.ts';
import { REMIND_TASK } from '../src/db/queries/chat-outbox.ts';

export const identifier = REMIND_TASK;

const payloadSchema = z.object({ approvalId: z.string().min(1) });

export function makeChatApprovalRemind(chat: ChatDeliverer | undefined): Task {
  return async (payload, helpers) => {
    const parsed = payloadSchema.safeParse(payload);
    if (!parsed.success) {
      helpers.logger.error(`${identifier} job ${helpers.job.id} has a malformed payload ${JSON.stringify(payload)}; expected {"approvalId"}`);
      return;
    }
    if (!chat)
      throw new TollgateError(
        'TG_CHAT_NOT_CONFIGURED',
        'No chat platform is set up in this worker, so approval reminders wait; configure one (see docs/slack.md or docs/teams.md).',
      );
    await chat.remindApproval(parsed.data.approvalId);
  };
}
