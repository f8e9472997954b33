/**
 * The view of a proposal: what Tollgate understood from a free-text request (src/chat/
 * understand.ts), shown in the thread with **Confirm** and **Edit** until the person who asked
 * confirms it. Plain data (JSON-safe): the message is rendered when it is recorded, and drawn
 * again, without buttons, once it is confirmed.
 */
import type { Principal } from '../common/principals.ts';
import type { FormField } from './form.ts';

/** Interactive ids (part of the external contract, see docs/free-text.md): Slack action_id, Teams verb. Their value/data is the proposal id only. */
export const PROPOSAL_ACTION_IDS = {
  confirm: 'proposal.confirm',
  edit: 'proposal.edit',
} as const;

export interface ProposalView {
  id: string;
  workflow: string;
  version: number;
  description: string;
  /** The parameters as understood, in the form's order, as text (what a form would submit). */
  params: { name: string; value: string }[];
  /** The only person who may confirm. */
  asker: Principal;
  /** The run Confirm started; null while it waits for Confirm. */
  runId: string | null;
}

/** The parameters in the form's field order (fields the form does not describe last, as given). */
export function orderedParams(fields: readonly FormField[], given: Record<string, string>): { name: string; value: string }[] {
  const known = fields.filter((f) => Object.hasOwn(given, f.name)).map((f) => ({ name: f.name, value: given[f.name] as string }));
  const rest = Object.entries(given)
    .filter(([k]) => !fields.some((f) => f.name === k))
    .map(([name, value]) => ({ name, value }));
  return [...known, ...rest];
}
