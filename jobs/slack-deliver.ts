/**
 * Task `slack-deliver`: bring one Slack message (or App Home) up to date with the state in the
 * database (the outbox; see bots/slack/deliver.ts). Enqueued by the events trigger for runs
 * started from Slack (job key `slack:run:<runId>`, so bursts coalesce) and by the adapter for
 * replies and App Home. The payload is checked at run time because jobs are added from SQL.
 */
import { z } from 'zod';
import type { Task } from 'graphile-worker';

export const identifier = 'slack-deliver';

const payloadSchema = z.union([
  z.object({ runId: z.string().min(1) }),
  z.object({ messageId: z.string().min(1) }),
  z.object({ home: z.object({ tenant: z.string().min(1), user: z.string().min(1) }) }),
  // Added by migrations/000004_slack_approvals.sql for approval events (key `slack:apr:<id>`).
  z.object({ approvalId: z.string().min(1) }),
]);

/** What the task needs from the Slack adapter; absent when Slack is not configured. */
export interface SlackDeliveryPort {
  deliverRun(runId: string): Promise<unknown>;
  deliverMessage(messageId: string): Promise<unknown>;
  deliverHome(home: { tenant: string; user: string }): Promise<unknown>;
  deliverApproval(approvalId: string): Promise<unknown>;
  remindApproval(approvalId: string): Promise<unknown>;
}

export function makeSlackDeliver(slack: SlackDeliveryPort | undefined): Task {
  return async (payload, helpers) => {
    const parsed = payloadSchema.safeParse(payload);
    if (!parsed.success) {
      helpers.logger.error(`slack-deliver job ${helpers.job.id} has a malformed payload ${JSON.stringify(payload)}; expected {"runId"}, {"messageId"}, {"home"} or {"approvalId"}`);
      return;
    }
    if (!slack) {
      // Fail (and so retry later) rather than drop: the message catches up once Slack is configured.
      throw new Error('Slack is not configured in this worker: set SLACK_BOT_TOKEN (and SLACK_SIGNING_SECRET) so Slack messages can be delivered.');
    }
    const p = parsed.data;
    if ('runId' in p) await slack.deliverRun(p.runId);
    else if ('messageId' in p) await slack.deliverMessage(p.messageId);
    else if ('approvalId' in p) await slack.deliverApproval(p.approvalId);
    else await slack.deliverHome(p.home);
  };
}
