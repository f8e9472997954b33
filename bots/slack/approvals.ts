/**
 * Approvals in Slack: the approvals engine's views (src/approvals) as Block Kit, and the outbox
 * rows of an approval's copies (the run message's thread, a DM to each Slack approver).
 *
 * General notes
 * - Rendering is pure (the outbox hashes it); the same approval gives the same JSON in every
 *   copy, so a decision updates them all to the same state: who decided and when, no buttons.
 * - Buttons carry the approval id only. Who clicked comes from the verified payload (bot.ts).
 * - Copies are rows in `chat_messages` (kind 'approval', one per `copy`: 'thread' or the
 *   approver's principal), created by the delivery job the first time it sees a pending approval;
 *   a DM's channel is found with conversations.open when it is first delivered (deliver.ts).
 */
import type { KnownBlock } from '@slack/types';
import type { ApprovalView as EngineApproval } from '../../src/approvals/types.ts';
import { newId } from '../../src/ids.ts';
import { parsePrincipal, type Principal } from '../../src/principals.ts';
import type { Queryable } from '../../src/runtime/journal.ts';
import type { ApprovalView as SlackApproval } from '../../src/views/run-view.ts';
import { approvalBlocks, escapeMrkdwn, LIMITS, truncate, type SlackMessage } from './blocks.ts';
import { mention } from './identity.ts';

export const REJECT_CALLBACK_ID = 'approval.reject';
export const REASON_BLOCK = 'reason';
const REASON_ACTION = 'value';

function principalOrNull(s: string | null | undefined): Principal | null {
  if (!s) return null;
  try {
    return parsePrincipal(s);
  } catch {
    return null;
  }
}

/** The engine's view → the platform-neutral shape the Slack blocks draw (RunView.approvals). */
export function toSlackApproval(a: EngineApproval): SlackApproval {
  const ended = a.status === 'approved' || a.status === 'rejected';
  const decisive = ended ? [...a.decisions].reverse().find((d) => d.decision === (a.status === 'approved' ? 'approve' : 'reject')) : undefined;
  const status = a.status === 'voided' ? 'cancelled' : a.status;
  return {
    id: a.id,
    step: a.name,
    status,
    approvers: [`${a.approvers}; ${a.quorum}`],
    ...(a.tool ? { tool: a.tool } : {}),
    ...(a.params && typeof a.params === 'object' ? { params: a.params as Record<string, unknown> } : {}),
    ...(a.risk ? { risk: a.risk } : {}),
    ...(a.rationale ? { rationale: a.rationale } : {}),
    requestedBy: principalOrNull(a.requester),
    deadline: a.expiresAt ? new Date(a.expiresAt) : null,
    decidedBy: principalOrNull(decisive?.principal),
    decidedAt: decisive ? new Date(decisive.decidedAt) : a.resolvedAt && status !== 'pending' ? new Date(a.resolvedAt) : null,
    reason: decisive?.comment ?? (a.status === 'expired' ? 'the deadline passed' : a.status === 'voided' ? 'the parameters changed; see the new request' : null),
  };
}

/** The approvals a run message shows: people's gates (not rule approvals), voided ones left out. */
export function runMessageApprovals(list: EngineApproval[]): SlackApproval[] {
  return list.filter((a) => a.status !== 'voided' && !a.autoReason).map(toSlackApproval);
}

function progress(a: EngineApproval): string | undefined {
  if (a.required <= 1 || a.status !== 'pending') return undefined;
  return `${a.approvals} of ${a.required} approvals so far${a.decisions.length ? ` (${a.decisions.map((d) => `${d.decision} by ${mention(principalOrNull(d.principal))}`).join(', ')})` : ''}`;
}

/** One approval's blocks with its summary on top (DMs, the thread copy, lists). */
export function approvalWithSummary(a: EngineApproval): KnownBlock[] {
  const icon = a.status === 'pending' ? ':raised_hand:' : a.status === 'approved' ? ':white_check_mark:' : ':no_entry_sign:';
  const head = `${icon} *${a.status === 'pending' ? 'Approval needed' : 'Approval'}*: ${escapeMrkdwn(truncate(a.summary, 1000))}`;
  const ctx = [`Run \`${a.runId}\` (${escapeMrkdwn(a.workflow)})`, progress(a)].filter(Boolean).join(' · ');
  return [
    { type: 'section', text: { type: 'mrkdwn', text: truncate(head, LIMITS.sectionText) } },
    { type: 'context', elements: [{ type: 'mrkdwn', text: truncate(ctx, LIMITS.sectionText) }] },
    ...approvalBlocks(toSlackApproval(a)),
  ];
}

/**
 * An approval copy (thread or DM). `copy` is the copy's key: 'thread', or the principal a DM went
 * to. A DM to someone who may no longer decide (the request was escalated to other approvers)
 * keeps the request but loses its buttons, and says why.
 */
export function renderApprovalMessage(a: EngineApproval, copy = 'thread'): SlackMessage {
  const state = a.status === 'pending' ? 'approval needed' : a.status;
  const text = truncate(`${a.workflow}: ${state}: ${a.summary}`, LIMITS.fallbackText);
  const blocks = approvalWithSummary(a);
  if (copy === 'thread' || a.status !== 'pending' || a.eligible.includes(copy)) return { text, blocks };
  return {
    text,
    blocks: [
      ...blocks.filter((b) => b.type !== 'actions'),
      { type: 'context', elements: [{ type: 'mrkdwn', text: 'This request went to other approvers (escalated); nothing is needed from you.' }] },
    ],
  };
}

/** `/tollgate approvals` and App Home: what waits for this person, with buttons. */
export function pendingApprovalBlocks(list: EngineApproval[], maxBlocks: number): KnownBlock[] {
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

export function renderPendingApprovals(list: EngineApproval[]): SlackMessage {
  return { text: `${list.length} approval(s) wait for your decision`, blocks: pendingApprovalBlocks(list, LIMITS.blocksPerMessage) };
}

export function renderReminder(a: EngineApproval): SlackMessage {
  const due = a.expiresAt ? new Date(a.expiresAt) : null;
  const when = due ? `<!date^${Math.floor(due.getTime() / 1000)}^{date_short_pretty} {time}|${due.toISOString()}>` : 'soon';
  const text = `:alarm_clock: Reminder: ${escapeMrkdwn(truncate(a.summary, 1000))} needs your decision by ${when}; Approve or Reject it in the message above (or \`/tollgate approvals\`).`;
  return { text: truncate(`Reminder: ${a.summary} needs your decision`, LIMITS.fallbackText), blocks: [{ type: 'section', text: { type: 'mrkdwn', text: truncate(text, LIMITS.sectionText) } }] };
}

/** May this principal still decide (approve) this approval? Mirrors listPendingApprovals' filter. */
export function mayStillDecide(a: EngineApproval, principal: string): boolean {
  if (a.status !== 'pending' || !a.eligible.includes(principal)) return false;
  if (a.decisions.some((d) => d.principal === principal)) return false;
  return a.allowSelfApproval || a.requester !== principal;
}

/** The Slack approvers a DM goes to: eligible Slack principals, not the requester (unless self-approval is allowed). */
export function slackApprovers(a: EngineApproval): Principal[] {
  return a.eligible
    .filter((p) => a.allowSelfApproval || p !== a.requester)
    .map(principalOrNull)
    .filter((p): p is Principal => p?.platform === 'slack');
}

/**
 * Creates the missing copies of a pending approval (idempotent). The thread copy needs the run
 * message's `ts` (the thread); until that message is posted there is none, and the run's
 * delivery schedules this approval's delivery again once it posts it (deliver.ts).
 */
export async function ensureApprovalCopies(q: Queryable, a: EngineApproval): Promise<void> {
  const run = await q.query<{ channel: string; ts: string | null; thread_ts: string | null }>(
    `SELECT channel, ts, thread_ts FROM tollgate.chat_messages WHERE run_id = $1 AND kind = 'run' AND given_up_at IS NULL ORDER BY created_at, id LIMIT 1`,
    [a.runId],
  );
  const msg = run.rows[0];
  if (msg?.ts) {
    await q.query(
      `INSERT INTO tollgate.chat_messages (id, kind, run_id, approval_id, copy, channel, thread_ts) VALUES ($1, 'approval', $2, $3, 'thread', $4, $5)
       ON CONFLICT DO NOTHING`,
      [newId('msg'), a.runId, a.id, msg.channel, msg.thread_ts ?? msg.ts],
    );
  }
  for (const p of slackApprovers(a)) {
    await q.query(
      `INSERT INTO tollgate.chat_messages (id, kind, run_id, approval_id, copy, dm_user) VALUES ($1, 'approval', $2, $3, $4, $5)
       ON CONFLICT DO NOTHING`,
      [newId('msg'), a.runId, a.id, `slack:${p.tenant}:${p.user}`, p.user],
    );
  }
}

export async function enqueueApprovalDelivery(q: Queryable, approvalId: string, runAt?: Date): Promise<void> {
  await q.query(`SELECT tollgate.slack_enqueue(json_build_object('approvalId', $1::text), 'slack:apr:' || $1, $2)`, [approvalId, runAt ?? null]);
}

export const REMIND_TASK = 'slack-approval-remind';

/** Schedules the deadline reminder (one job per approval; a new deadline moves it). */
export async function scheduleReminder(q: Queryable, approvalId: string, at: Date): Promise<void> {
  await q.query(
    `SELECT graphile_worker.add_job($1, json_build_object('approvalId', $2::text), run_at => $3, job_key => 'slack:remind:' || $2,
       job_key_mode => 'replace', max_attempts => 10)`,
    [REMIND_TASK, approvalId, at],
  );
}

/** When to remind: `leadMs` before the deadline, but never earlier than half-way to it. */
export function reminderTime(a: Pick<EngineApproval, 'createdAt' | 'expiresAt'>, leadMs: number): Date | undefined {
  if (!a.expiresAt) return undefined;
  const due = new Date(a.expiresAt).getTime();
  const span = due - new Date(a.createdAt).getTime();
  return new Date(due - Math.max(0, Math.min(leadMs, span / 2)));
}

/** The Reject modal: a required reason; private_metadata is the approval id only. */
export function rejectModal(a: Pick<EngineApproval, 'id' | 'summary'>) {
  return {
    type: 'modal' as const,
    callback_id: REJECT_CALLBACK_ID,
    private_metadata: a.id,
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

type StateValues = Record<string, Record<string, { value?: string | null }>>;

export function readReason(values: StateValues): string {
  return (values[REASON_BLOCK]?.[REASON_ACTION]?.value ?? '').trim();
}
