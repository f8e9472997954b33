/**
 * Approvals as Block Kit: a copy of an approval (the thread copy, a DM), the list of what waits for
 * someone (`/tollgate approvals`, App Home), the deadline reminder, and the Reject form. Which
 * copies exist, and when they are delivered and reminded, is decided in src/chat for every
 * platform; this file only draws.
 *
 * Rendering is pure (the outbox hashes it); the same approval gives the same blocks in every copy,
 * so a decision updates them all to the same state. Buttons carry the approval id only; who clicked
 * comes from the verified payload (bot.ts).
 */
import type { KnownBlock } from '@slack/types';
import type { ApprovalCopy, ApprovalView } from '../../src/views/approval-view.ts';
import { approvalFallback, approvalHeadline, copyStillAsks, ESCALATED_AWAY, readRevision, type Shown } from '../../src/chat/index.ts';
import { approvalBlocks, escapeMrkdwn, LIMITS, SLACK_MARKUP, slackDate, type SlackMessage } from './blocks.ts';
import { truncate } from '../../src/chat/index.ts';

export const REJECT_CALLBACK_ID = 'approval.reject';
export const REASON_BLOCK = 'reason';
const REASON_ACTION = 'value';

/** One approval's blocks with its summary on top (DMs, the thread copy, lists). */
export function approvalWithSummary(a: ApprovalView, opts: { buttons?: boolean } = {}): KnownBlock[] {
  const icon = a.status === 'pending' ? ':raised_hand:' : a.status === 'approved' ? ':white_check_mark:' : ':no_entry_sign:';
  const head = `${icon} ${approvalHeadline(a, SLACK_MARKUP)}`;
  return [
    { type: 'section', text: { type: 'mrkdwn', text: truncate(head, LIMITS.sectionText) } },
    { type: 'context', elements: [{ type: 'mrkdwn', text: truncate(`Run \`${a.runId}\` (${escapeMrkdwn(a.workflow)})`, LIMITS.sectionText) }] },
    ...approvalBlocks(a, opts),
  ];
}

/**
 * An approval copy (thread or DM). A DM to someone who may no longer decide (the request was
 * escalated to other approvers) keeps the request but loses its buttons, and says why.
 */
export function renderApprovalMessage(a: ApprovalView, copy: ApprovalCopy = { kind: 'thread' }): SlackMessage {
  const text = truncate(approvalFallback(a), LIMITS.fallbackText);
  if (a.status !== 'pending' || copyStillAsks(a, copy)) return { text, blocks: approvalWithSummary(a) };
  return {
    text,
    blocks: [...approvalWithSummary(a, { buttons: false }), { type: 'context', elements: [{ type: 'mrkdwn', text: ESCALATED_AWAY }] }],
  };
}

/** `/tollgate approvals` and App Home: what waits for this person, with buttons. */
export function pendingApprovalBlocks(list: ApprovalView[], maxBlocks: number): KnownBlock[] {
  const blocks: KnownBlock[] = [{ type: 'header', text: { type: 'plain_text', text: 'Waiting for your decision' } }];
  if (list.length === 0) {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: '_Nothing waits for your decision._' } });
    return blocks;
  }
  let shown = 0;
  for (const a of list) {
    const more = [...approvalWithSummary(a), { type: 'divider' } as KnownBlock];
    if (blocks.length + more.length > maxBlocks - 1) break;
    blocks.push(...more);
    shown++;
  }
  if (shown < list.length) {
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `… and ${list.length - shown} more; \`tollgate approvals list\` shows them all.` }] });
  }
  return blocks;
}

export function renderPendingApprovals(list: ApprovalView[]): SlackMessage {
  return { text: `${list.length} approval(s) wait for your decision`, blocks: pendingApprovalBlocks(list, LIMITS.blocksPerMessage) };
}

export function renderReminder(a: ApprovalView): SlackMessage {
  const when = a.deadline ? slackDate(a.deadline) : 'soon';
  const text = `:alarm_clock: Reminder: ${escapeMrkdwn(truncate(a.summary, 1000))} needs your decision by ${when}; Approve or Reject it in the message above (or \`/tollgate approvals\`).`;
  return {
    text: truncate(`Reminder: ${a.summary} needs your decision`, LIMITS.fallbackText),
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: truncate(text, LIMITS.sectionText) } }],
  };
}

/**
 * The Reject modal: a required reason. private_metadata (≤ 3000 characters) keeps the approval id
 * and where the Reject button was clicked, where a refusal is explained after the submission.
 */
export function rejectModal(a: { id: string; summary: string }, at: { conversation: string; thread: string | null; direct?: boolean }, shown?: Shown) {
  const meta: RejectMetadata = {
    approvalId: a.id,
    at: { channel: at.conversation, threadTs: at.thread, ...(at.direct ? { direct: true } : {}) },
    ...(shown ? { shown } : {}),
  };
  return {
    type: 'modal' as const,
    callback_id: REJECT_CALLBACK_ID,
    private_metadata: JSON.stringify(meta),
    title: { type: 'plain_text' as const, text: 'Reject' },
    submit: { type: 'plain_text' as const, text: 'Reject' },
    close: { type: 'plain_text' as const, text: 'Back' },
    blocks: [
      { type: 'section' as const, text: { type: 'mrkdwn' as const, text: truncate(`Reject: ${escapeMrkdwn(a.summary)}`, LIMITS.sectionText) } },
      {
        type: 'input' as const,
        block_id: REASON_BLOCK,
        label: { type: 'plain_text' as const, text: 'Why? (the requester sees this)' },
        element: { type: 'plain_text_input' as const, action_id: REASON_ACTION, multiline: true, min_length: 1, max_length: 2000 },
      },
    ],
  };
}

export interface RejectMetadata {
  approvalId: string;
  at: { channel: string; threadTs: string | null; direct?: boolean } | null;
  /** What the copy the Reject button was clicked on showed (stale buttons); absent in modals opened by earlier versions. */
  shown?: Shown;
}

/** The Reject modal's metadata; a modal opened by an earlier version held the approval id alone. */
export function readRejectMetadata(s: string): RejectMetadata {
  try {
    const m = JSON.parse(s) as Partial<RejectMetadata>;
    if (m && typeof m.approvalId === 'string') {
      const at =
        m.at && typeof m.at.channel === 'string'
          ? { channel: m.at.channel, threadTs: typeof m.at.threadTs === 'string' ? m.at.threadTs : null, ...(m.at.direct === true ? { direct: true } : {}) }
          : null;
      const revision = readRevision(m.shown?.revision);
      const msg = m.shown?.message;
      const message =
        msg && typeof msg.conversation === 'string' && typeof msg.messageId === 'string'
          ? { message: { platform: 'slack', conversation: msg.conversation, messageId: msg.messageId } }
          : {};
      return { approvalId: m.approvalId, at, ...(revision !== undefined ? { shown: { revision, ...message } } : {}) };
    }
  } catch {
    // not JSON: the earlier form
  }
  return { approvalId: s, at: null };
}

type StateValues = Record<string, Record<string, { value?: string | null }>>;

export function readReason(values: StateValues): string {
  return (values[REASON_BLOCK]?.[REASON_ACTION]?.value ?? '').trim();
}
