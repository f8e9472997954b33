/**
 * The shapes of approval gates: what a workflow asks for (`ApprovalOptions`), what it gets back
 * (`ApprovalResult`), the stored record that views and the CLI read (`ApprovalRecord`; chat shows it through src/views/approval-view.ts) and what a decision answers
 * (`DecideOutcome`). Plain JSON-friendly objects: timestamps are ISO strings.
 */
import type { ApprovalPolicy, ApprovalStatus } from '../db/queries/approvals.ts';
import type { Duration } from '../runtime/duration.ts';

// Stored as they are (src/db/queries/approvals.ts declares the rows): `ApprovalPolicy` (who may
// decide, how many must agree), `ApprovalStatus` and `ResolvedPolicy`.
export type { ApprovalPolicy, ApprovalStatus, DelegatedSeat, ResolvedPolicy } from '../db/queries/approvals.ts';
import type { DelegatedSeat } from '../db/queries/approvals.ts';

export type OnTimeout = 'reject' | { escalate: ApprovalPolicy; timeout?: Duration };

export interface ApprovalOptions {
  policy: ApprovalPolicy;
  /** One sentence for people: what is being approved. */
  summary: string;
  /** Exactly the parameters shown to approvers; the approval binds to their hash. */
  params: Record<string, unknown>;
  risk?: 'low' | 'medium' | 'high';
  /** Why the workflow asks (e.g. "amount 5000 EUR is above the 1000 threshold"). */
  rationale?: string;
  /** The write tool this approval covers, and the input it will be called with when that differs from `params`. */
  tool?: string;
  toolInput?: unknown;
  /** How long approvers have; no timeout when omitted. */
  timeout?: Duration;
  /** What happens when the timeout passes: reject (default) or escalate to another policy (once). */
  onTimeout?: OnTimeout;
  /**
   * Approve at once by rule, recording this reason (e.g. "below the threshold"). The gate is still
   * recorded, so write tools it covers pass the same check as approved ones.
   */
  autoApprove?: string | false;
  /**
   * An approval covers exactly one execution of the write tool call it is bound to; a second call
   * with the same parameters in the same run needs its own. `true` lets it cover every such call.
   */
  reusable?: boolean;
  /** The configured policy's rule that gave these options (src/approvals/policies.ts `policyGate`), recorded with the approval. */
  policyRef?: PolicyRef;
}

/** Which rule of which version of a workflow's policy applied; `digest` is the sha256 of the policy's canonical JSON. */
export interface PolicyRef {
  rule: string;
  /** The configured `version`; null for a built-in default policy (from the workflow's settings). */
  version: number | null;
  digest: string;
}

export interface DecisionView {
  principal: string;
  decision: 'approve' | 'reject';
  comment: string | null;
  decidedAt: string;
  via: string | null;
  /** The OS user who recorded it at the shell (`cli:<host>:<user>`); null for chat decisions. */
  osUser: string | null;
  /** A delegate's decision: the approver whose place it took (src/approvals/delegation.ts); null in one's own right. */
  onBehalfOf: string | null;
  /** The decider's display name when they decided (never used to authorise); null when none was known. */
  name: string | null;
}

/** What `ctx.approval` returns once the gate is resolved (recorded in the journal). */
export interface ApprovalResult {
  approvalId: string;
  approved: boolean;
  status: 'approved' | 'rejected' | 'expired';
  paramsHash: string;
  /** The rule's reason when approved automatically. */
  auto: string | null;
  /** Who ended the gate (the last approver, the rejecter), null for expiry and rules. */
  by: string | null;
  comment: string | null;
  decisions: DecisionView[];
}

export interface ApprovalRecord {
  id: string;
  runId: string;
  workflow: string;
  runStatus: string;
  stepIdx: number;
  name: string;
  status: ApprovalStatus;
  summary: string;
  params: unknown;
  paramsHash: string;
  risk: string | null;
  rationale: string | null;
  tool: string | null;
  toolInput: unknown;
  requester: string | null;
  /** What the directory calls the requester (people by name); null when unknown. Never used to authorise. */
  requesterName: string | null;
  /** People-readable: "group finance (3 people)", "slack:T1:U1". */
  approvers: string;
  /** The principals who may decide: the approvers, then the delegates standing in for them. */
  eligible: string[];
  /** Who stands in for whom, by delegation (empty when nobody delegated). */
  delegations: DelegatedSeat[];
  /** People-readable: "2 of 3", "any one of 3", "all 3". */
  quorum: string;
  required: number;
  approvals: number;
  allowSelfApproval: boolean;
  expiresAt: string | null;
  onTimeout: string;
  escalations: number;
  autoReason: string | null;
  supersededBy: string | null;
  /** The configured policy's rule, version and digest that opened the gate; null without a policy. */
  policy?: PolicyRef | null;
  createdAt: string;
  resolvedAt: string | null;
  decisions: DecisionView[];
}

export type DecideKind = 'recorded' | 'already_recorded' | 'not_allowed' | 'expired' | 'already_resolved' | 'parameters_changed' | 'not_found';

export interface DecideOutcome {
  kind: DecideKind;
  /** A sentence for people: what happened and why. */
  message: string;
  approval?: ApprovalRecord;
  /** Set when this decision ended the gate. */
  resolved?: 'approved' | 'rejected';
  /**
   * With `resolved`: the approval's workflow and opening, for time-to-decision, which the caller
   * observes once its transaction committed (a retried transaction would count it twice).
   */
  opened?: { workflow: string | undefined; at: Date };
}
