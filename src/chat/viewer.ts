/**
 * A message as one person sees it: the view of the message a click was made on, and what that
 * person may decide on it. For platforms that answer a click (or a refresh) with a card drawn for
 * the clicker (Teams' `Action.Execute`): the buttons are the eligibility rule's answer
 * (src/approvals/eligibility.ts), read from the approvals' records, so a copy never offers Approve
 * to someone `decide` would refuse (a requester the policy bars from approving their own request).
 */
import { getApproval } from '../approvals/index.ts';
import { eligibility, type Eligibility, type EligibilityFacts } from '../approvals/eligibility.ts';
import { formatPrincipal, type Principal } from '../common/principals.ts';
import type { Queryable } from '../db/queryable.ts';
import type { ApprovalView } from '../views/approval-view.ts';
import { approvalMessageView, postedMessageView, runMessageView } from './message-views.ts';
import type { ChatView } from './platform.ts';

/** What one viewer may decide, by approval id: the eligibility rule's answer for each approval a view shows. */
export type DecisionRights = ReadonlyMap<string, Eligibility>;

/** Which message a viewer looks at: the posted one the platform names, else the approval or run an action named. */
export interface ViewedMessage {
  posted?: { platform: string; conversation: string; messageId: string };
  approvalId?: string;
  runId?: string;
}

/** The approvals a view shows with buttons. */
function approvalsOf(view: ChatView): ApprovalView[] {
  switch (view.kind) {
    case 'approval':
      return [view.approval];
    case 'run':
    case 'run-status':
      return view.run.approvals;
    case 'approvals':
      return view.approvals;
    default:
      return [];
  }
}

/** What the viewer may decide on each approval the view shows (one read per approval, at a click). */
export async function decisionRights(q: Queryable, view: ChatView, viewer: Principal): Promise<DecisionRights> {
  const who = formatPrincipal(viewer);
  const rights = new Map<string, Eligibility>();
  for (const a of approvalsOf(view)) {
    if (!rights.has(a.id)) rights.set(a.id, eligibility(await getApproval(q, a.id), a.id, who, 'approve'));
  }
  return rights;
}

/** The message as the viewer sees it now, with what they may decide on it; `view` undefined when Tollgate does not know it. */
export async function viewForViewer(q: Queryable, m: ViewedMessage, viewer: Principal): Promise<{ view: ChatView | undefined; rights: DecisionRights }> {
  let view: ChatView | undefined;
  if (m.posted) view = await postedMessageView(q, m.posted);
  if (!view && m.approvalId) view = await approvalMessageView(q, m.approvalId);
  if (!view && m.runId) view = await runMessageView(q, m.runId);
  return { view, rights: view ? await decisionRights(q, view, viewer) : new Map() };
}

/**
 * The rule as far as a view alone tells it, for a renderer given no rights: a view does not carry
 * its policy's `allowSelfApproval`, so the requester is not barred here. Adapters pass the rights
 * from `viewForViewer`; `decide` stays the authority at the click.
 */
export function eligibilityOnView(a: ApprovalView, viewer: Principal): Eligibility {
  const facts: EligibilityFacts = {
    status: a.status,
    eligible: a.eligible,
    approvers: a.approvers,
    requester: a.requestedBy ? formatPrincipal(a.requestedBy) : null,
    allowSelfApproval: true,
    decisions: a.decisions,
  };
  return eligibility(facts, a.id, formatPrincipal(viewer), 'approve');
}
