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
import {
  ACTION_IDS,
  approvalLines,
  buttonValue,
  foldSteps,
  STATUS_LABELS,
  stepText,
  truncate,
  type RunSummary,
  type StepStatus,
  type WorkflowSummary,
} from '../../src/chat/index.ts';
import type { RunView, StepView } from '../../src/views/run-view.ts';
import type { ApprovalView } from '../../src/views/approval-view.ts';
import type { Markup } from '../../src/views/text.ts';
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

/** Slack renders `<!date^…>` in the reader's time zone. */
export function slackDate(d: Date): string {
  const secs = Math.floor(d.getTime() / 1000);
  return `<!date^${secs}^{date_short_pretty} {time}|${d.toISOString()}>`;
}

/** Slack's markup for the shared sentences (src/views/text.ts). */
export const SLACK_MARKUP: Markup = {
  text: escapeMrkdwn,
  bold: (s) => `*${s}*`,
  code: (s) => `\`${escapeMrkdwn(s)}\``,
  person: mention,
  date: slackDate,
};

function stepsBlocks(steps: StepView[]): KnownBlock[] {
  if (steps.length === 0) return [];
  const { earlier, shown } = foldSteps(steps, LIMITS.visibleSteps);
  const lines: string[] = [];
  if (earlier) lines.push(`_${earlier}_`);
  lines.push(...shown.map((s) => `${STEP_ICONS[s.status]} ${stepText(s, SLACK_MARKUP)}`));
  return [{ type: 'section', text: { type: 'mrkdwn', text: truncate(lines.join('\n'), LIMITS.sectionText) } }];
}

/**
 * One approval as every copy shows it (the run message, the thread copy, DMs, lists): what is
 * asked, who may decide and the rule; while pending the live tally and the buttons; once resolved,
 * everyone who decided.
 */
export function approvalBlocks(a: ApprovalView, opts: { buttons?: boolean } = {}): KnownBlock[] {
  const lines = approvalLines(a, SLACK_MARKUP);
  const blocks: KnownBlock[] = [
    { type: 'section', block_id: `approval:${a.id}`, text: { type: 'mrkdwn', text: truncate(lines.join('\n'), LIMITS.sectionText) } },
  ];
  if (a.status === 'pending' && opts.buttons !== false) {
    // The approval id, and the revision of the view (stale buttons: src/chat/button-value.ts).
    const value = buttonValue(a.id, a.revision);
    blocks.push({
      type: 'actions',
      block_id: `approval-actions:${a.id}`,
      elements: [
        { type: 'button', action_id: ACTION_IDS.approve, text: { type: 'plain_text', text: 'Approve' }, style: 'primary', value },
        { type: 'button', action_id: ACTION_IDS.reject, text: { type: 'plain_text', text: 'Reject' }, style: 'danger', value },
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
    // The run id, and the revision of the view (stale buttons: src/chat/button-value.ts).
    const value = buttonValue(view.runId, view.revision);
    blocks.push({
      type: 'actions',
      block_id: `run-actions:${view.runId}`,
      elements: view.actions.map((a) =>
        a === ACTION_IDS.edit || a === ACTION_IDS.resolve
          ? amendButton(a, view.runId)
          : a === ACTION_IDS.retry
            ? { type: 'button' as const, action_id: a, text: { type: 'plain_text' as const, text: 'Retry' }, style: 'primary' as const, value }
            : {
                type: 'button' as const,
                action_id: a,
                text: { type: 'plain_text' as const, text: 'Cancel' },
                style: 'danger' as const,
                value,
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

/** Edit and retry, and Resolve… (docs/operator-control.md): each opens a modal (bots/slack/amend.ts). */
function amendButton(a: typeof ACTION_IDS.edit | typeof ACTION_IDS.resolve, runId: string) {
  return {
    type: 'button' as const,
    action_id: a,
    text: { type: 'plain_text' as const, text: a === ACTION_IDS.edit ? 'Edit and retry' : 'Resolve…' },
    value: runId,
  };
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
  return {
    text: truncate(text, LIMITS.fallbackText),
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: truncate(escapeMrkdwn(text), LIMITS.sectionText) } }],
  };
}
