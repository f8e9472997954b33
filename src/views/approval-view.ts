/**
 * The platform-neutral view of one approval gate: what every chat copy of it shows (the run
 * message, the copy in its thread, each approver's DM, App Home, `/tollgate approvals`), built
 * from the approvals engine's stored record (`ApprovalRecord`, src/approvals/types.ts).
 *
 * General notes
 * - Every copy tells the same story: the same view is rendered everywhere, so while the gate is
 *   pending each copy shows the live tally ("1 of 2 approvals so far"), and once it is resolved
 *   each copy names every person who decided, not only the last one.
 * - The rule ("2 approvals needed") and the tally ("1 of 2 so far") are separate fields, so a
 *   renderer never prints the rule where a reader would take it for progress.
 * - Pure: built from stored rows only, never the clock, so the same state renders the same bytes
 *   (the outbox hashes renderings to skip no-op updates).
 */
import type { ApprovalRecord, DelegatedSeat } from '../approvals/types.ts';
import { parsePrincipal, type Principal } from '../common/principals.ts';

export type ApprovalViewStatus = 'pending' | 'approved' | 'rejected' | 'expired' | 'cancelled' | 'voided';

export interface ApprovalDecisionView {
  /** The principal string as recorded (`slack:T1:U1`). */
  principal: string;
  /** Parsed, for mentions; null when the stored string is not a principal. */
  by: Principal | null;
  decision: 'approve' | 'reject';
  comment: string | null;
  at: Date;
  /** How it came in ('slack', 'teams', 'cli', 'console'), when recorded (toApprovalView always sets it). */
  via?: string | null;
  /** A delegate's decision: the approver whose place it took, parsed when it is a principal (toApprovalView always sets it). */
  onBehalfOf?: string | null;
  onBehalfOfWho?: Principal | null;
}

export interface ApprovalView {
  id: string;
  runId: string;
  workflow: string;
  /** The gated step's name. */
  step: string;
  /** One sentence: what is being approved. */
  summary: string;
  status: ApprovalViewStatus;
  /** What will happen if approved. */
  tool: string | null;
  params: Record<string, unknown> | null;
  /** (toApprovalView always sets it) sha256 of the canonical JSON of `params`: the exact parameters approvers were shown and the decision binds to. */
  paramsHash?: string;
  risk: string | null;
  /** Why the workflow asks (or the model's rationale, when a model proposed it). */
  rationale: string | null;
  requestedBy: Principal | null;
  /** Who may decide, for people: "group finance (3 people)". */
  approvers: string;
  /** How many approvals the gate needs (the rule, not progress). */
  required: number;
  /** Approvals counted so far (the tally). */
  approvals: number;
  /** Every decision recorded, oldest first. */
  decisions: ApprovalDecisionView[];
  deadline: Date | null;
  /** Why the gate ended without a person's decision (expired, voided), for people. */
  endReason: string | null;
  /** The principals who may decide: a DM copy to someone not in it has no buttons. */
  eligible: string[];
  /** Whether the requester, when among `eligible`, may approve their own request (the policy's rule). */
  allowSelfApproval: boolean;
  /** Who stands in for whom by delegation (toApprovalView always sets it): the eligibility rule reads it. */
  delegations?: DelegatedSeat[];
  /** The rule's reason when the gate was approved by rule, not by a person (toApprovalView always sets it). */
  autoReason?: string | null;
  /** The revision of its run when the view was read (see `RunView.revision`): its buttons carry it. Unset in lists (no version on their buttons). */
  revision?: number;
}

function principalOrNull(s: string | null | undefined): Principal | null {
  if (!s) return null;
  try {
    return parsePrincipal(s);
  } catch {
    return null;
  }
}

/** The principal with the name it was recorded under (a decision's), for people only: never used to authorise. */
function named(p: Principal | null, name: string | null | undefined): Principal | null {
  return p && name ? { ...p, name } : p;
}

export function toApprovalView(a: ApprovalRecord): ApprovalView {
  return {
    id: a.id,
    runId: a.runId,
    workflow: a.workflow,
    step: a.name,
    summary: a.summary,
    status: a.status,
    tool: a.tool,
    params: a.params && typeof a.params === 'object' ? (a.params as Record<string, unknown>) : null,
    paramsHash: a.paramsHash,
    risk: a.risk,
    rationale: a.rationale,
    requestedBy: named(principalOrNull(a.requester), a.requesterName),
    approvers: a.approvers,
    required: a.required,
    approvals: a.approvals,
    decisions: a.decisions.map((d) => ({
      principal: d.principal,
      by: named(principalOrNull(d.principal), d.name),
      decision: d.decision,
      comment: d.comment,
      at: new Date(d.decidedAt),
      via: d.via,
      onBehalfOf: d.onBehalfOf,
      onBehalfOfWho: principalOrNull(d.onBehalfOf),
    })),
    deadline: a.expiresAt ? new Date(a.expiresAt) : null,
    endReason: a.status === 'expired' ? 'the deadline passed' : a.status === 'voided' ? 'the parameters changed; see the new request' : null,
    eligible: [...a.eligible],
    allowSelfApproval: a.allowSelfApproval,
    // Records built before delegation (stored views, older callers) carry none.
    delegations: (a.delegations ?? []).map((s) => ({ ...s, chain: [...s.chain] })),
    autoReason: a.autoReason,
  };
}

/** The approvals a run message shows: people's gates (not rule approvals), voided ones left out. */
export function runMessageApprovals(list: ApprovalRecord[]): ApprovalView[] {
  return list.filter((a) => a.status !== 'voided' && !a.autoReason).map(toApprovalView);
}

/** The rule, for people: "1 approval needed", "2 approvals needed". Never a tally. */
export function describeRule(a: Pick<ApprovalView, 'required'>): string {
  return a.required === 1 ? '1 approval needed' : `${a.required} approvals needed`;
}

/** The decisions that ended the gate (approvals of an approved one, the rejection of a rejected one). */
export function deciders(a: ApprovalView): ApprovalDecisionView[] {
  if (a.status === 'approved') return a.decisions.filter((d) => d.decision === 'approve');
  if (a.status === 'rejected') return a.decisions.filter((d) => d.decision === 'reject');
  return [];
}

/** Decisions recorded that `deciders` does not name (approvals before a rejection or an expiry). */
export function otherDecisions(a: ApprovalView): ApprovalDecisionView[] {
  const shown = new Set(deciders(a));
  return a.decisions.filter((d) => !shown.has(d));
}

/** Which copy of an approval a message is: the run message's thread, or a DM to one principal. */
export type ApprovalCopy = { kind: 'thread' } | { kind: 'dm'; principal: string };

/**
 * A copy addressed to someone who may no longer decide (the request was escalated to other
 * approvers) keeps the request but loses its buttons, and says why.
 */
export function copyStillAsks(a: ApprovalView, copy: ApprovalCopy): boolean {
  return a.status === 'pending' && (copy.kind === 'thread' || a.eligible.includes(copy.principal));
}
