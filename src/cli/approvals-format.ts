/** Human-readable views of approvals for the CLI: a pending list and a run's approvals with their decisions. */
import type { ApprovalRecord } from '../approvals/types.ts';
import { pad, table } from './table.ts';

export function formatApprovalList(list: ApprovalRecord[]): string {
  if (list.length === 0) return 'No approvals are waiting.';
  const rows = list.map((a) => [a.id, a.workflow, a.summary, `${a.approvals}/${a.required}`, a.expiresAt ?? '-', a.approvers]);
  const head = ['APPROVAL', 'WORKFLOW', 'SUMMARY', 'HAVE', 'EXPIRES', 'APPROVERS'];
  return table(head, rows);
}

/** The approvals section of `runs show`: who, when, decision, comment, parameters hash. */
export function formatRunApprovals(list: ApprovalRecord[]): string {
  if (list.length === 0) return '';
  const out = ['', '', 'Approvals'];
  for (const a of list) {
    out.push(`  ${a.id}  ${a.name}  ${a.status.toUpperCase()}  params sha256 ${a.paramsHash}`);
    out.push(`    ${a.summary}`);
    out.push(`    approvers: ${a.approvers}; quorum: ${a.quorum}; requested ${a.createdAt}${a.expiresAt ? `; expires ${a.expiresAt} (${a.onTimeout})` : ''}`);
    if (a.policy)
      out.push(
        `    policy: rule ${a.policy.rule}${a.policy.version === null ? ' (default policy)' : ` of version ${a.policy.version}`}, sha256 ${a.policy.digest}`,
      );
    if (a.escalations > 0) out.push(`    escalated ${a.escalations} time(s)`);
    if (a.supersededBy) out.push(`    voided: parameters changed; superseded by ${a.supersededBy}`);
    if (a.autoReason) out.push(`    approved by rule at ${a.resolvedAt ?? '?'}: ${a.autoReason}`);
    for (const d of a.decisions) {
      out.push(
        `    ${d.decidedAt}  ${pad(d.principal, 24)} ${pad(d.decision, 7)}${d.onBehalfOf ? ` on behalf of ${d.onBehalfOf}` : ''}${d.comment ? ` "${d.comment}"` : ''}${d.via ? ` (via ${d.via}${d.osUser && d.osUser !== d.principal ? ` by ${d.osUser}` : ''})` : ''}`,
      );
    }
    if (a.status === 'expired') out.push(`    expired at ${a.expiresAt ?? '?'} with no decision: rejected`);
  }
  return out.join('\n');
}
