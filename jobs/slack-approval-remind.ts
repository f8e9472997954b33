/**
 * Task `slack-approval-remind`: an approval's deadline is near; remind the Slack approvers who
 * have not decided yet (a reply under the DM they were sent, through the outbox). Scheduled by the
 * approval's delivery (bots/slack/deliver.ts) at `expires_at` minus the lead time, job key
 * `slack:remind:<approvalId>`; it does nothing for an approval that is no longer pending, and
 * each approver is reminded once (`chat_messages.reminded_at`). Slack drops events during
 * incidents, so the reminder does not depend on any of them arriving.
 */
import { z } from 'zod';
import type { Task } from 'graphile-worker';
import type { SlackDeliveryPort } from './slack-deliver.ts';

export const identifier = 'slack-approval-remind';

const payloadSchema = z.object({ approvalId: z.string().min(1) });

export function makeSlackApprovalRemind(slack: SlackDeliveryPort | undefined): Task {
  return async (payload, helpers) => {
    const parsed = payloadSchema.safeParse(payload);
    if (!parsed.success) {
      helpers.logger.error(`slack-approval-remind job ${helpers.job.id} has a malformed payload ${JSON.stringify(payload)}; expected {"approvalId"}`);
      return;
    }
    if (!slack) throw new Error('Slack is not configured in this worker: set SLACK_BOT_TOKEN (and SLACK_SIGNING_SECRET) so approval reminders can be sent.');
    await slack.remindApproval(parsed.data.approvalId);
  };
}
