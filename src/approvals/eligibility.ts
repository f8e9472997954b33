/**
 * The one eligibility rule: may principal P decide approval A now, and if not, why. Everything that
 * asks uses it: `decide` (the authority, at the click), every copy's buttons (Slack, Teams, App
 * Home's list, DM copies and reminders) and every explanation given before a form is shown
 * (Slack's reject reason). Pure: it reads what the caller already holds, never the database.
 *
 * Two levels, one rule:
 * - `policyEligibility`: the policy alone (an approver of the resolved policy, or a delegate
 *   standing in for one; a requester may not approve their own request unless the policy allows
 *   it). Counting approvals (`countApprovals`) uses it too: after an escalation only the new
 *   approvers count.
 * - `eligibility`: the approval as it stands (found, pending, not decided by P yet) and then the
 *   policy. A requester among the approvers may still reject their own request.
 *
 * Delegation (src/approvals/delegation.ts finds the delegates when the gate opens): a delegate
 * decides in the place of ("on behalf of") the approver who delegated, who keeps the right; one
 * decision fills one approver's place, whoever makes it, so an approver and their delegate never
 * count twice. Self-approval stays banned through delegation: a delegate may not approve when the
 * requester is anywhere in the chain of delegations that made them a delegate (the delegate itself,
 * the approver who delegated, or anyone between).
 */
import type { ApprovalRecord, DelegatedSeat, ResolvedPolicy } from './types.ts';
import { describeApprovers } from './describe.ts';
import { seatsFilled } from './quorum.ts';

/** Why a principal may not decide, as a code for programs (the message is for people). */
export type IneligibleReason = 'not_found' | 'already_recorded' | 'not_pending' | 'not_an_approver' | 'own_request';

export type Ineligible = { may: false; reason: IneligibleReason; message: string };

/** May: in one's own right, or (`onBehalfOf`) as the delegate of that approver. */
export type Eligibility = { may: true; onBehalfOf?: string } | Ineligible;

export type Decision = 'approve' | 'reject';

/** A recorded decision as the rule reads it: who made it, and whose place it took (a delegate's). */
export interface DecisionFacts {
  principal: string;
  onBehalfOf?: string | null;
  decision?: Decision;
}

const MAY: Eligibility = { may: true };

/** The error code a delegate who would approve their own request is refused with (in the message). */
export const DELEGATION_OWN_REQUEST = 'TG_DELEGATION_OWN_REQUEST';

type PolicyFacts = Pick<ResolvedPolicy, 'approvers' | 'groups' | 'named' | 'allowSelfApproval' | 'delegations' | 'requirements'>;

/**
 * May `who` record `decision` under this policy, on a request made by `requester`, given the
 * decisions already recorded (`decisions`: only needed to tell whose place a delegate takes)? The
 * message is the reason alone ("slack:T1:U9 is not one of the approvers (…)"); callers add their framing.
 */
export function policyEligibility(
  p: PolicyFacts,
  who: string,
  requester: string | null,
  decision: Decision,
  decisions: readonly DecisionFacts[] = [],
): Eligibility {
  if (p.approvers.includes(who)) return ownRequest(who, requester, p.allowSelfApproval, decision) ?? decidedForMe(who, decisions) ?? MAY;
  const seats = seatsOf(p.delegations, who);
  if (seats.length > 0) return asDelegate(seats, who, requester, p.allowSelfApproval, decision, decisions);
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

function ownRequest(who: string, requester: string | null, allowSelfApproval: boolean, decision: Decision): Ineligible | undefined {
  if (decision === 'approve' && who === requester && !allowSelfApproval) {
    return { may: false, reason: 'own_request', message: `${who} requested this run, and this policy does not let requesters approve their own requests.` };
  }
  return undefined;
}

/** The places `who` may take as a delegate (a delegate is never an approver in its own right: delegation.ts leaves those out). */
function seatsOf(delegations: readonly DelegatedSeat[] | undefined, who: string): DelegatedSeat[] {
  return (delegations ?? []).filter((s) => s.delegate === who);
}

/** Whose place a decision took: the delegator's for a delegate, else the decider's own. */
const placeOf = (d: DecisionFacts): string => d.onBehalfOf ?? d.principal;

/** An approver whose delegate already decided in their place. */
function decidedForMe(who: string, decisions: readonly DecisionFacts[]): Ineligible | undefined {
  const by = decisions.find((d) => d.onBehalfOf === who);
  if (!by) return undefined;
  return {
    may: false,
    reason: 'already_recorded',
    message: `A decision on your behalf was already recorded by your delegate ${by.principal}; nothing changed.`,
  };
}

/** A delegate: the first place it stands in for that no one filled yet, unless the chain passes through the requester. */
function asDelegate(
  seats: DelegatedSeat[],
  who: string,
  requester: string | null,
  allowSelfApproval: boolean,
  decision: Decision,
  decisions: readonly DecisionFacts[],
): Eligibility {
  const barred = (s: DelegatedSeat) => decision === 'approve' && !allowSelfApproval && requester !== null && s.chain.includes(requester);
  const clean = seats.filter((s) => !barred(s));
  const first = seats[0] as DelegatedSeat;
  if (clean.length === 0) {
    const why =
      who === requester
        ? `${who} requested this run; standing in for ${first.onBehalfOf} by delegation does not change that`
        : `${who} stands in for ${first.onBehalfOf} through the delegations ${first.chain.join(' → ')}, which pass through the requester ${requester ?? '?'}`;
    return {
      may: false,
      reason: 'own_request',
      message: `${why}, and this policy does not let requesters approve their own requests, by delegation or otherwise (${DELEGATION_OWN_REQUEST}).`,
    };
  }
  const taken = new Set(decisions.map(placeOf));
  const open = clean.find((s) => !taken.has(s.onBehalfOf));
  if (!open) {
    const by = decisions.find((d) => placeOf(d) === (clean[0] as DelegatedSeat).onBehalfOf);
    return {
      may: false,
      reason: 'already_recorded',
      message: `The decision for ${(clean[0] as DelegatedSeat).onBehalfOf}, whom you stand in for, was already recorded${by ? ` by ${by.principal}` : ''}; nothing changed.`,
    };
  }
  return { may: true, onBehalfOf: open.onBehalfOf };
}

/**
 * How many approvals count under this policy: one per approver's place (an approver's own, or
 * taken by their delegate), for principals the policy still allows (after an escalation, the new
 * approvers and their delegates).
 */
export function countApprovals(p: PolicyFacts, requester: string | null, decisions: readonly DecisionFacts[]): number {
  const places = new Set<string>();
  for (const d of decisions) {
    if (d.decision !== undefined && d.decision !== 'approve') continue;
    if (d.onBehalfOf) {
      const ok = seatsOf(p.delegations, d.principal).some(
        (s) => s.onBehalfOf === d.onBehalfOf && (p.allowSelfApproval || requester === null || !s.chain.includes(requester)),
      );
      if (ok) places.add(d.onBehalfOf);
    } else if (p.approvers.includes(d.principal) && !ownRequest(d.principal, requester, p.allowSelfApproval, 'approve')) {
      places.add(d.principal);
    }
  }
  // A quorum by group: each place fills one seat of the requirements (a delegate fills its delegator's).
  return p.requirements ? seatsFilled(p.requirements, [...places]) : places.size;
}

/** What the rule reads of an approval: an `ApprovalRecord` has it all. */
export type EligibilityFacts = Pick<ApprovalRecord, 'status' | 'eligible' | 'approvers' | 'requester' | 'allowSelfApproval'> & {
  decisions: readonly DecisionFacts[];
  /** Who stands in for whom (ApprovalRecord.delegations); without it, delegates are judged as approvers. */
  delegations?: readonly DelegatedSeat[];
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
  const seats = seatsOf(a.delegations, who);
  const e =
    seats.length > 0
      ? asDelegate(seats, who, a.requester, a.allowSelfApproval, decision, a.decisions)
      : (ownRequest(who, a.requester, a.allowSelfApproval, decision) ?? decidedForMe(who, a.decisions) ?? MAY);
  return !e.may && e.reason === 'own_request' ? { ...e, message: `Not allowed: ${e.message}` } : e;
}

/**
 * Whether the policy bars `who` from approving because it is their own request (for a delegate:
 * the requester is in every chain that makes them one): who gets an approval's DM.
 */
export function barredAsRequester(
  who: string,
  a: Pick<ApprovalRecord, 'requester' | 'allowSelfApproval'> & { delegations?: readonly DelegatedSeat[] },
): boolean {
  const seats = seatsOf(a.delegations, who);
  if (seats.length > 0) return !asDelegate(seats, who, a.requester, a.allowSelfApproval, 'approve', []).may;
  return ownRequest(who, a.requester, a.allowSelfApproval, 'approve') !== undefined;
}

/** Yes or no, for a button. */
export function mayDecide(a: EligibilityFacts | undefined, who: string, decision: Decision = 'approve'): boolean {
  return eligibility(a, '', who, decision).may;
}
