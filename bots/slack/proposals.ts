/**
 * A proposal (src/views/proposal-view.ts) as a Slack message: what a free-text request was
 * understood to mean, with **Confirm** and **Edit** while it waits for the person who asked, and
 * the run it started once confirmed. Buttons carry the proposal id only; who pressed is read from
 * the signed payload (bot.ts).
 */
import type { KnownBlock } from '@slack/types';
import type { ProposalView } from '../../src/views/proposal-view.ts';
import { PROPOSAL_ACTION_IDS } from '../../src/chat/index.ts';
import { escapeMrkdwn, LIMITS, type SlackMessage } from './blocks.ts';
import { truncate } from '../../src/chat/index.ts';
import { mention } from './identity.ts';

export function renderProposal(p: ProposalView): SlackMessage {
  const lines = p.params.map((x) => `• *${escapeMrkdwn(truncate(x.name, 100))}*: ${escapeMrkdwn(truncate(x.value, 500))}`);
  const head = `${p.runId ? 'Confirmed' : 'I understood'}: start *${escapeMrkdwn(p.workflow)}* v${p.version} (${escapeMrkdwn(truncate(p.description, 300))})`;
  const blocks: KnownBlock[] = [
    { type: 'section', text: { type: 'mrkdwn', text: truncate(head, LIMITS.sectionText) } },
    { type: 'section', text: { type: 'mrkdwn', text: truncate(lines.join('\n') || '_No parameters._', LIMITS.sectionText) } },
  ];
  if (p.runId) {
    blocks.push({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: `:white_check_mark: ${mention(p.asker)} confirmed; it started as \`${escapeMrkdwn(p.runId)}\`.` }],
    });
  } else {
    blocks.push({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: `Nothing starts until ${mention(p.asker)} presses *Confirm*. *Edit* opens the form with these values.` }],
    });
    blocks.push({
      type: 'actions',
      block_id: `proposal-actions:${p.id}`,
      elements: [
        { type: 'button', action_id: PROPOSAL_ACTION_IDS.confirm, text: { type: 'plain_text', text: 'Confirm' }, style: 'primary', value: p.id },
        { type: 'button', action_id: PROPOSAL_ACTION_IDS.edit, text: { type: 'plain_text', text: 'Edit' }, value: p.id },
      ],
    });
  }
  const text = `${p.runId ? 'Confirmed' : 'Confirm?'} ${p.workflow} v${p.version}: ${p.params.map((x) => `${x.name}=${x.value}`).join(', ')}`;
  return { text: truncate(text, LIMITS.fallbackText), blocks };
}
