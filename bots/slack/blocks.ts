/**
 * RunView → Block Kit. Pure functions: the same view always gives the same JSON (the outbox
 * hashes it to skip no-op updates).
 *
 * Slack's limits are respected by construction, never by hoping (Slack's documented Block Kit limits): at most
 * 50 blocks per message, section text ≤ 3000, button text ≤ 75, and about 13k characters of block
 * text per message (`msg_blocks_too_long`). Long runs fold their older steps into one line; long
 * texts (errors, parameters) are truncated with an ellipsis, never rejected.
 */
import type { KnownBlock } from '@slack/types';
import type { StepStatus } from '../../src/runtime/journal.ts';
import { ACTION_IDS, STATUS_LABELS, type RunView, type StepView } from '../../src/views/run-view.ts';
import { deciders, describeRule, otherDecisions, type ApprovalDecisionView, type ApprovalView } from '../../src/views/approval-view.ts';
import type { RunSummary, WorkflowSummary } from '../../src/chat/replies.ts';
import { mention } from './identity.ts';

export const LIMITS = {
  blocksPerMessage: 50,
  blocksPerView: 100,
  sectionText: 3000,
  buttonText: 75,
  fallbackText: 3000,
  /** Steps shown one per line; older ones are folded into a count. */
  visibleSteps: 20,
  errorText: 1500,
} as const;

export interface SlackMessage {
  text: string;
  blocks: KnownBlock[];
}

/** Cuts `s` to at most `max` characters, ending in an ellipsis when cut. */
export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  return `${s.slice(0, Math.max(0, max - 1))}…`;
}

/** Escapes the three characters Slack's mrkdwn treats as control characters. */
export function escapeMrkdwn(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const STEP_ICONS: Record<StepStatus, string> = {
  running: ':arrow_forward:',
  retrying: ':repeat:',
  sleeping: ':zzz:',
  succeeded: ':white_check_mark:',
  failed: ':x:',
  compensating: ':leftwards_arrow_with_hook:',
  compensated: ':leftwards_arrow_with_hook:',
  compensation_failed: ':bangbang:',
};

const RUN_ICONS: Record<RunView['status'], string> = {
  queued: ':hourglass_flowing_sand:',
  running: ':arrow_forward:',
  waiting: ':double_vertical_bar:',
  succeeded: ':white_check_mark:',
  failed: ':x:',
  cancelled: ':no_entry_sign:',
  compensating: ':leftwards_arrow_with_hook:',
  compensated: ':leftwards_arrow_with_hook:',
  compensation_failed: ':bangbang:',
  dead_letter: ':skull_and_crossbones:',
};

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return m < 60 ? `${m} min ${s} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Slack renders `<!date^…>` in the reader's time zone. */
export function slackDate(d: Date): string {
  const secs = Math.floor(d.getTime() / 1000);
  return `<!date^${secs}^{date_short_pretty} {time}|${d.toISOString()}>`;
}

function stepLine(s: StepView): string {
  let line = `${STEP_ICONS[s.status]} ${escapeMrkdwn(truncate(s.name, 80))}`;
  if (s.durationMs !== null) line += ` · ${formatDuration(s.durationMs)}`;
  else line += ` · ${s.status}`;
  if (s.attempts > 1) line += ` · ${s.attempts} attempts`;
  return line;
}

function stepsBlocks(steps: StepView[]): KnownBlock[] {
  if (steps.length === 0) return [];
  const shown = steps.slice(-LIMITS.visibleSteps);
  const folded = steps.slice(0, steps.length - shown.length);
  const lines: string[] = [];
  if (folded.length > 0) {
    const ok = folded.filter((s) => s.status === 'succeeded').length;
    lines.push(`_… ${folded.length} earlier step${folded.length === 1 ? '' : 's'} (${ok} succeeded)_`);
  }
  lines.push(...shown.map(stepLine));
  return [{ type: 'section', text: { type: 'mrkdwn', text: truncate(lines.join('\n'), LIMITS.sectionText) } }];
}

function decisionList(list: ApprovalDecisionView[]): string {
  return list.map((d) => `${d.by ? mention(d.by) : escapeMrkdwn(d.principal)} ${slackDate(d.at)}`).join(', ');
}

/**
 * One approval as every copy shows it (the run message, the thread copy, DMs, lists): what is
 * asked, who may decide and the rule; while pending the live tally and the buttons; once resolved,
 * everyone who decided.
 */
export function approvalBlocks(a: ApprovalView, opts: { buttons?: boolean } = {}): KnownBlock[] {
  const lines = [`*Approval for ${escapeMrkdwn(a.step)}*`];
  if (a.tool) lines.push(`Tool: \`${escapeMrkdwn(a.tool)}\``);
  if (a.params) lines.push(`Parameters: \`${escapeMrkdwn(truncate(JSON.stringify(a.params), 800))}\``);
  if (a.risk) lines.push(`Risk: ${escapeMrkdwn(a.risk)}`);
  if (a.rationale) lines.push(`Rationale: ${escapeMrkdwn(truncate(a.rationale, 600))}`);
  if (a.requestedBy) lines.push(`Asked by ${mention(a.requestedBy)}`);
  lines.push(`Approvers: ${escapeMrkdwn(a.approvers) || '(none)'} · ${describeRule(a)}`);
  if (a.deadline) lines.push(`Deadline: ${slackDate(a.deadline)}`);
  const approvedSoFar = a.decisions.filter((d) => d.decision === 'approve');
  if (a.status === 'pending') {
    lines.push(
      approvedSoFar.length === 0
        ? `So far: no approvals (0 of ${a.required})`
        : `So far: ${a.approvals} of ${a.required} approval${a.required === 1 ? '' : 's'} (approved by ${decisionList(approvedSoFar)})`,
    );
  } else {
    const ended = deciders(a);
    let decided = `*${a.status[0]?.toUpperCase()}${a.status.slice(1)}*`;
    if (ended.length > 0) decided += ` by ${decisionList(ended)}`;
    const reason = a.status === 'rejected' ? ended.at(-1)?.comment : a.endReason;
    if (reason) decided += `: ${escapeMrkdwn(truncate(reason, 500))}`;
    lines.push(decided);
    const others = otherDecisions(a);
    const earlier = others.filter((d) => d.decision === 'approve');
    if (earlier.length > 0) lines.push(`Approved before that by ${decisionList(earlier)}`);
  }
  const blocks: KnownBlock[] = [
    { type: 'section', block_id: `approval:${a.id}`, text: { type: 'mrkdwn', text: truncate(lines.join('\n'), LIMITS.sectionText) } },
  ];
  if (a.status === 'pending' && opts.buttons !== false) {
    blocks.push({
      type: 'actions',
      block_id: `approval-actions:${a.id}`,
      elements: [
        { type: 'button', action_id: ACTION_IDS.approve, text: { type: 'plain_text', text: 'Approve' }, style: 'primary', value: a.id },
        { type: 'button', action_id: ACTION_IDS.reject, text: { type: 'plain_text', text: 'Reject' }, style: 'danger', value: a.id },
      ],
    });
  }
  return blocks;
}

/** The live run message. */
export function renderRunMessage(view: RunView): SlackMessage {
  const status = `${RUN_ICONS[view.status]} *${STATUS_LABELS[view.status]}*${view.cancelRequested && view.status !== 'cancelled' ? ' (cancel requested)' : ''}`;
  const head = `*${escapeMrkdwn(view.workflow)}* v${view.version} · ${status}\nRequested by ${mention(view.requester)}`;
  const blocks: KnownBlock[] = [
    { type: 'section', text: { type: 'mrkdwn', text: truncate(head, LIMITS.sectionText) } },
    { type: 'context', elements: [{ type: 'mrkdwn', text: `\`${view.runId}\`` }] },
    ...stepsBlocks(view.steps),
  ];
  if (view.waiting) {
    const until = view.waiting.until ? ` until ${slackDate(view.waiting.until)}` : '';
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `:hourglass: Waiting (${escapeMrkdwn(view.waiting.reason)})${until}` }] });
  }
  for (const a of view.approvals) blocks.push(...approvalBlocks(a));
  if (view.error) {
    const where = view.error.step ? `Step *${escapeMrkdwn(view.error.step)}* failed` : 'The run failed';
    const text = `${where}:\n\`\`\`${truncate(view.error.message, LIMITS.errorText).replace(/```/g, "'''")}\`\`\``;
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: truncate(text, LIMITS.sectionText) } });
  }
  if (view.actions.length > 0) {
    blocks.push({
      type: 'actions',
      block_id: `run-actions:${view.runId}`,
      elements: view.actions.map((a) =>
        a === ACTION_IDS.retry
          ? { type: 'button' as const, action_id: a, text: { type: 'plain_text' as const, text: 'Retry' }, style: 'primary' as const, value: view.runId }
          : {
              type: 'button' as const,
              action_id: a,
              text: { type: 'plain_text' as const, text: 'Cancel' },
              style: 'danger' as const,
              value: view.runId,
              confirm: {
                title: { type: 'plain_text' as const, text: 'Cancel this run?' },
                text: { type: 'plain_text' as const, text: 'It stops at the next step boundary and undoes completed steps that can be undone.' },
                confirm: { type: 'plain_text' as const, text: 'Cancel run' },
                deny: { type: 'plain_text' as const, text: 'Keep running' },
              },
            },
      ),
    });
  }
  // Keep the buttons: if the approvals ever push the count over, drop middle blocks, not actions.
  while (blocks.length > LIMITS.blocksPerMessage) blocks.splice(2, 1);
  const text = truncate(`${view.workflow} v${view.version}: ${STATUS_LABELS[view.status]} (${view.runId})`, LIMITS.fallbackText);
  return { text, blocks };
}

/** `help` and `workflows`: every workflow with its inputs and how to run it. */
export function renderWorkflows(defs: WorkflowSummary[], intro?: string | null): SlackMessage {
  const lines = defs.map((d) => `• *${escapeMrkdwn(d.name)}* v${d.version}: ${escapeMrkdwn(d.description)}\n    inputs: ${escapeMrkdwn(d.inputs)}`);
  const usage =
    '`/tollgate run <workflow> key=value …` starts a run · `status <run-id>` · `runs` · `approvals` · `retry <run-id>` · `cancel <run-id>` · `workflows` · `help`';
  const blocks: KnownBlock[] = [];
  if (intro) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: truncate(escapeMrkdwn(intro), LIMITS.sectionText) } });
  // One section per ~15 workflows keeps each under the section limit.
  for (let i = 0; i < lines.length && blocks.length < 45; i += 15) {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: truncate(lines.slice(i, i + 15).join('\n'), LIMITS.sectionText) } });
  }
  if (lines.length === 0) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: 'No workflows are registered.' } });
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: usage }] });
  return { text: truncate(`${intro ? `${intro} ` : ''}Workflows: ${defs.map((d) => d.name).join(', ')}`, LIMITS.fallbackText), blocks };
}

export function renderRunList(runs: RunSummary[], title: string): SlackMessage {
  const lines = runs.map(
    (r) => `${RUN_ICONS[r.status]} *${escapeMrkdwn(r.workflow)}* v${r.version} · ${STATUS_LABELS[r.status]} · \`${r.id}\` · ${slackDate(r.createdAt)}`,
  );
  const blocks: KnownBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(title, 150) } },
    { type: 'section', text: { type: 'mrkdwn', text: truncate(lines.join('\n') || '_No runs yet._', LIMITS.sectionText) } },
  ];
  return { text: truncate(`${title}: ${runs.length} run(s)`, LIMITS.fallbackText), blocks };
}

/** A notice (src/chat/replies.ts): its `*bold*` and `` `code` `` marks are Slack's own; only &, < and > need escaping. */
export function plainMessage(text: string): SlackMessage {
  return { text: truncate(text, LIMITS.fallbackText), blocks: [{ type: 'section', text: { type: 'mrkdwn', text: truncate(escapeMrkdwn(text), LIMITS.sectionText) } }] };
}
