/**
 * A message as one person sees it: the view of the message a click was made on, and what that
 * person may decide on it. For platforms that answer a click (or a refresh) with a card drawn for
 * the clicker (Teams' `Action.Execute`): the buttons are the eligibility rule's answer
 * (src/approvals/eligibility.ts) on the facts the approval's view carries, so a copy never offers
 * Approve to someone `decide` would refuse (a requester the policy bars from approving their own
 * request).
 */
import { eligibility, type Decision, type Eligibility, type EligibilityFacts } from '../approvals/eligibility.ts';
import { formatPrincipal, type Principal } from '../common/principals.ts';
import type { Queryable } from '../db/queryable.ts';
import type { ApprovalView } from '../views/approval-view.ts';
import { approvalMessageView, postedMessageView, runMessageView } from './message-views.ts';
import type { ChatView } from './platform.ts';

/** Which message a viewer looks at: the posted one the platform names, else the approval or run an action named. */
export interface ViewedMessage {
  posted?: { platform: string; conversation: string; messageId: string };
  approvalId?: string;
  runId?: string;
}

/** The message as the viewer would see it now; undefined when Tollgate does not know it. */
export async function viewForViewer(q: Queryable, m: ViewedMessage): Promise<ChatView | undefined> {
  let view: ChatView | undefined;
  if (m.posted) view = await postedMessageView(q, m.posted);
  if (!view && m.approvalId) view = await approvalMessageView(q, m.approvalId);
  if (!view && m.runId) view = await runMessageView(q, m.runId);
  return view;
}

/**
 * May the viewer decide this approval, by the one eligibility rule, from what its view carries
 * (status, eligible principals, decisions, requester and the policy's `allowSelfApproval`): no
 * read of its own. `decide` stays the authority at the click.
 */
export function eligibilityOnView(a: ApprovalView, viewer: Principal, decision: Decision = 'approve'): Eligibility {
  const facts: EligibilityFacts = {
    status: a.status,
    eligible: a.eligible,
    approvers: a.approvers,
    requester: a.requestedBy ? formatPrincipal(a.requestedBy) : null,
    allowSelfApproval: a.allowSelfApproval,
    decisions: a.decisions,
    delegations: a.delegations ?? [],
  };
  return eligibility(facts, a.id, formatPrincipal(viewer), decision);
}
