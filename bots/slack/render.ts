/**
 * The core's views (src/chat/platform.ts `ChatView`) as Slack messages: `{text, body: {blocks}}`,
 * where `text` is the notification and fallback text. Pure: the outbox hashes the result.
 */
import { z } from 'zod';
import { outdatedLines, outdatedPlain, truncate, type ChatReply, type ChatView, type Rendered } from '../../src/chat/index.ts';
import type { OutdatedView } from '../../src/views/outdated-view.ts';
import { renderApprovalMessage, renderPendingApprovals, renderReminder } from './approvals.ts';
import { escapeMrkdwn, LIMITS, plainMessage, renderRunList, renderRunMessage, renderWorkflows, SLACK_MARKUP, type SlackMessage } from './blocks.ts';
import { renderProposal } from './proposals.ts';

/** The button under a reply about missing parameters; its value names the workflow and what was given. */
export const OPEN_FORM_ACTION = 'run.params.open';
export const openFormValueSchema = z.object({ workflow: z.string(), params: z.record(z.string(), z.string()) });

export function toRendered(m: SlackMessage): Rendered {
  return { text: m.text, body: { blocks: m.blocks } };
}

/** A stored rendering back as Slack's `{text, blocks}` (the outbox keeps `body` opaque). */
export function fromRendered(r: Rendered): SlackMessage {
  const body = (r.body ?? {}) as { blocks?: SlackMessage['blocks'] };
  return { text: r.text, blocks: body.blocks ?? [] };
}

export function renderReply(reply: ChatReply): SlackMessage {
  switch (reply.kind) {
    case 'notice':
      return plainMessage(reply.text);
    case 'workflows':
      return renderWorkflows(reply.workflows, reply.intro);
    case 'runs':
      return renderRunList(reply.runs, reply.title);
    case 'approvals':
      return renderPendingApprovals(reply.approvals);
    case 'run-status':
      return renderRunMessage(reply.run);
    case 'invalid-params': {
      const errs = reply.errors.map((e) => `• ${e.field ? `*${escapeMrkdwn(e.field)}*: ` : ''}${escapeMrkdwn(e.message)}`).join('\n');
      const m = plainMessage(
        `${reply.intro ?? `Cannot start *${reply.workflow}*:`}\n${errs}\nInputs: ${reply.inputs}\nWrite \`run ${reply.workflow} key=value …\`.`,
      );
      // Slack has forms: offer one, prefilled, when the button's value fits.
      const value = JSON.stringify({ workflow: reply.workflow, params: reply.given });
      if (value.length <= 2000) {
        m.blocks.push({
          type: 'actions',
          elements: [{ type: 'button', action_id: OPEN_FORM_ACTION, text: { type: 'plain_text', text: 'Fill in the form' }, value }],
        });
      }
      return m;
    }
    case 'proposal':
      return renderProposal(reply.proposal);
    case 'outdated':
      return renderOutdated(reply.outdated);
  }
}

export function renderSlack(view: ChatView): SlackMessage {
  switch (view.kind) {
    case 'run':
      return renderRunMessage(view.run);
    case 'approval':
      return renderApprovalMessage(view.approval, view.copy);
    case 'reminder':
      return renderReminder(view.approval);
    default:
      return renderReply(view);
  }
}

/** The answer to a click on an outdated copy (stale buttons): nothing was done, what happened since (with mentions), the state now. */
export function renderOutdated(v: OutdatedView): SlackMessage {
  return {
    text: truncate(outdatedPlain(v), LIMITS.fallbackText),
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: truncate(outdatedLines(v, SLACK_MARKUP).join('\n'), LIMITS.sectionText) } }],
  };
}
