/**
 * Reading approvals as plain views (for adapters, the CLI and `ctx.approval`'s result). One query
 * per list plus one for the decisions; nothing here changes state.
 */
import type { Queryable } from '../db/queryable.ts';
import { isTerminalStatus } from '../db/queries/runs.ts';
import {
  loadApprovalRow,
  selectDecidedBy,
  selectDecisions,
  selectPendingApprovals,
  selectRunApprovals,
  type ApprovalRow,
  type DecisionRow,
} from '../db/queries/approvals.ts';
import { formatPrincipal, type Principal } from '../common/principals.ts';
import { principalKey } from './policy.ts';
import { countApprovals, policyEligibility } from './eligibility.ts';
import { delegatesOf, describeDelegates } from './delegation.ts';
import { describeApprovers, describeQuorum } from './describe.ts';
import type { ApprovalResult, ApprovalRecord, DecisionView } from './types.ts';

export function requesterKey(row: Pick<ApprovalRow, 'requester'>): string | null {
  return row.requester ? formatPrincipal(row.requester) : null;
}

function toDecision(d: DecisionRow): DecisionView {
  return {
    principal: d.principal,
    decision: d.decision,
    comment: d.comment,
    decidedAt: d.decided_at.toISOString(),
    via: d.via,
    osUser: d.os_user ?? null,
    onBehalfOf: d.on_behalf_of ?? null,
    name: d.display_name ?? null,
  };
}

export async function loadDecisions(q: Queryable, ids: string[]): Promise<Map<string, DecisionView[]>> {
  const out = new Map<string, DecisionView[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return out;
  for (const d of await selectDecisions(q, ids)) out.get(d.approval_id)?.push(toDecision(d));
  return out;
}

export function describeOnTimeout(row: ApprovalRow): string {
  if (!row.expires_at) return 'no timeout';
  const t = row.on_timeout;
  if (!t || t.action === 'reject') return 'rejected when it expires';
  const byGroup = (t.policy.requirements ?? []).map((r) => `${r.count} of ${r.group !== undefined ? `group ${r.group}` : (r.approvers ?? []).join(', ')}`);
  const groups = byGroup.length
    ? byGroup.join(' and ')
    : t.policy.groups?.length
      ? `group ${t.policy.groups.join(', ')}`
      : (t.policy.approvers ?? []).join(', ');
  return `escalated to ${groups} when it expires`;
}

export function toView(row: ApprovalRow, decisions: DecisionView[]): ApprovalRecord {
  const p = row.policy;
  const requester = requesterKey(row);
  const counted = countApprovals(p, requester, decisions);
  return {
    id: row.id,
    runId: row.run_id,
    workflow: row.workflow ?? '',
    runStatus: row.run_status ?? '',
    stepIdx: row.step_idx,
    name: row.name,
    status: row.status,
    summary: row.summary,
    params: row.params,
    paramsHash: row.params_hash,
    risk: row.risk,
    rationale: row.rationale,
    tool: row.tool,
    toolInput: row.tool_input,
    requester,
    requesterName: row.requester_name ?? null,
    approvers: row.auto_reason ? `approved by rule: ${row.auto_reason}` : `${describeApprovers(p)}${describeDelegates(p)}`,
    eligible: [...p.approvers, ...delegatesOf(p)],
    delegations: [...(p.delegations ?? [])],
    quorum: row.auto_reason ? 'none (rule)' : describeQuorum(p),
    required: p.required,
    approvals: counted,
    allowSelfApproval: p.allowSelfApproval,
    expiresAt: row.expires_at?.toISOString() ?? null,
    onTimeout: describeOnTimeout(row),
    escalations: row.escalations,
    autoReason: row.auto_reason,
    supersededBy: row.superseded_by,
    policy: row.policy_rule && row.policy_digest ? { rule: row.policy_rule, version: row.policy_version ?? null, digest: row.policy_digest } : null,
    createdAt: row.created_at.toISOString(),
    resolvedAt: row.resolved_at?.toISOString() ?? null,
    decisions,
  };
}

/** One approval as a view, with its decisions; undefined when no approval has that id. */
export async function getApproval(q: Queryable, id: string): Promise<ApprovalRecord | undefined> {
  const row = await loadApprovalRow(q, id);
  if (!row) return undefined;
  const d = await loadDecisions(q, [row.id]);
  return toView(row, d.get(row.id) ?? []);
}

/**
 * Approvals waiting for a decision, oldest first. With a principal: only those it may still
 * decide (an approver, not barred as requester, no decision recorded yet).
 */
export async function listPendingApprovals(q: Queryable, principal?: Principal | string): Promise<ApprovalRecord[]> {
  const live = (await selectPendingApprovals(q)).filter((r) => !isTerminalStatus(r.run_status ?? ''));
  const decisions = await loadDecisions(
    q,
    live.map((r) => r.id),
  );
  const who = principal === undefined ? undefined : principalKey(principal);
  return live
    .filter(
      (r) =>
        who === undefined ||
        (policyEligibility(r.policy, who, requesterKey(r), 'approve', decisions.get(r.id)).may && !decisions.get(r.id)?.some((d) => d.principal === who)),
    )
    .map((r) => toView(r, decisions.get(r.id) ?? []));
}

/** Every approval of a run (voided ones included), in step order. */
export async function listRunApprovals(q: Queryable, runId: string): Promise<ApprovalRecord[]> {
  const rows = await selectRunApprovals(q, runId);
  const decisions = await loadDecisions(
    q,
    rows.map((r) => r.id),
  );
  return rows.map((r) => toView(r, decisions.get(r.id) ?? []));
}

/** The gate's result as `ctx.approval` returns it (and the journal records it). */
export function toResult(row: ApprovalRow, decisions: DecisionView[]): ApprovalResult {
  const status = row.status === 'approved' || row.status === 'rejected' || row.status === 'expired' ? row.status : 'rejected';
  const last = [...decisions].reverse().find((d) => (status === 'rejected' ? d.decision === 'reject' : d.decision === 'approve'));
  return {
    approvalId: row.id,
    approved: status === 'approved',
    status,
    paramsHash: row.params_hash,
    auto: row.auto_reason,
    by: status === 'expired' || row.auto_reason ? null : (last?.principal ?? null),
    comment: status === 'expired' || row.auto_reason ? null : (last?.comment ?? null),
    decisions,
  };
}

/** The approvals `principal` decided, newest decision first, at most `limit` (the console's "My approvals"). */
export async function listDecidedBy(q: Queryable, principal: Principal | string, limit: number): Promise<ApprovalRecord[]> {
  const rows = await selectDecidedBy(q, principalKey(principal), limit);
  const decisions = await loadDecisions(
    q,
    rows.map((r) => r.id),
  );
  return rows.map((r) => toView(r, decisions.get(r.id) ?? []));
}
