/**
 * The one eligibility rule: may principal P decide approval A now, and if not, why. Everything that
 * asks uses it: `decide` (the authority, at the click), every copy's buttons (Slack, Teams, App
 * Home's list, DM copies and reminders) and every explanation given before a form is shown
 * (Slack's reject reason). Pure: it reads what the caller already holds, never the database.
 *
 * Two levels, one rule:
 * - `policyEligibility`: the policy alone (an approver of the resolved policy; a requester may not
 *   approve their own request unless the policy allows it). Counting approvals uses it too: after
 *   an escalation only the new approvers count.
 * - `eligibility`: the approval as it stands (found, pending, not decided by P yet) and then the
 *   policy. A requester among the approvers may still reject their own request.
 */
import type { ApprovalRecord, ResolvedPolicy } from './types.ts';
import { describeApprovers } from './describe.ts';

/** Why a principal may not decide, as a code for programs (the message is for people). */
export type IneligibleReason = 'not_found' | 'already_recorded' | 'not_pending' | 'not_an_approver' | 'own_request';

export type Ineligible = { may: false; reason: IneligibleReason; message: string };

export type Eligibility = { may: true } | Ineligible;

export type Decision = 'approve' | 'reject';

const MAY: Eligibility = { may: true };

/**
 * May `who` record `decision` under this policy, on a request made by `requester`? The message is
 * the reason alone ("slack:T1:U9 is not one of the approvers (…)"); callers add their framing.
 */
export function policyEligibility(
  p: Pick<ResolvedPolicy, 'approvers' | 'groups' | 'named' | 'allowSelfApproval'>,
  who: string,
  requester: string | null,
  decision: Decision,
): Eligibility {
  if (!p.approvers.includes(who)) {
    const tenant = who.split(':').slice(0, 2).join(':');
    const sameTenant = p.approvers.some((a) => a.startsWith(`${tenant}:`));
    return {
      may: false,
      reason: 'not_an_approver',
      message:
        `${who} is not one of the approvers (${describeApprovers(p)})` +
        (sameTenant ? '.' : `; no approver belongs to ${tenant}, and groups only authorise the principals they name.`),
    };
  }
  return ownRequest(who, requester, p.allowSelfApproval, decision) ?? MAY;
}

function ownRequest(who: string, requester: string | null, allowSelfApproval: boolean, decision: Decision): Ineligible | undefined {
  if (decision === 'approve' && who === requester && !allowSelfApproval) {
    return { may: false, reason: 'own_request', message: `${who} requested this run, and this policy does not let requesters approve their own requests.` };
  }
  return undefined;
}

/** What the rule reads of an approval: an `ApprovalRecord` has it all. */
export type EligibilityFacts = Pick<ApprovalRecord, 'status' | 'eligible' | 'approvers' | 'requester' | 'allowSelfApproval'> & {
  decisions: readonly { principal: string }[];
};

/**
 * May `who` decide this approval now? Undefined `a`: no such approval. The messages are whole
 * sentences for the person who asked; `decide` stays the authority when the decision arrives (it
 * also checks the deadline and the parameters shown).
 */
export function eligibility(a: EligibilityFacts | undefined, approvalId: string, who: string, decision: Decision = 'approve'): Eligibility {
  if (!a) return { may: false, reason: 'not_found', message: `No approval with id ${approvalId}.` };
  if (a.decisions.some((d) => d.principal === who)) {
    return { may: false, reason: 'already_recorded', message: `Your decision on ${approvalId} was already recorded; nothing changed.` };
  }
  if (a.status !== 'pending') return { may: false, reason: 'not_pending', message: `${approvalId} was already ${a.status}; your decision is not needed.` };
  if (!a.eligible.includes(who)) {
    return { may: false, reason: 'not_an_approver', message: `Not allowed: ${who} is not one of the approvers (${a.approvers}); nothing changed.` };
  }
  const own = ownRequest(who, a.requester, a.allowSelfApproval, decision);
  return own ? { ...own, message: `Not allowed: ${own.message}` } : MAY;
}

/** Whether the policy bars `who` from approving because it is their own request: who gets an approval's DM. */
export function barredAsRequester(who: string, a: Pick<ApprovalRecord, 'requester' | 'allowSelfApproval'>): boolean {
  return ownRequest(who, a.requester, a.allowSelfApproval, 'approve') !== undefined;
}

/** Yes or no, for a button. */
export function mayDecide(a: EligibilityFacts | undefined, who: string, decision: Decision = 'approve'): boolean {
  return eligibility(a, '', who, decision).may;
}
