/**
 * Human-readable views of approvals for the CLI: a pending list and a run's approvals with their
 * decisions. People by name (src/views/people.ts): a decider as the name they decided under (else
 * as the directory calls them now) with their platform, then the principal, which stays the identity.
 */
import type { ApprovalRecord } from '../approvals/types.ts';
import { parsePrincipal } from '../common/principals.ts';
import { platformLabel } from '../views/people.ts';
import { pad, table } from './table.ts';

/** Display names by principal (tollgate.people), as the command read them. */
export type Names = ReadonlyMap<string, string>;

/** "Ada Lovelace (Slack) slack:T1:UADA", or the principal alone while no name is known. */
export function cliPerson(principal: string, name?: string | null): string {
  if (!name) return principal;
  try {
    return `${name} (${platformLabel(parsePrincipal(principal).platform)}) ${principal}`;
  } catch {
    return `${name} ${principal}`;
  }
}

/** Every principal `formatRunApprovals` may name: requesters and deciders. */
export function peopleOf(list: ApprovalRecord[]): string[] {
  return list.flatMap((a) => [...(a.requester ? [a.requester] : []), ...a.decisions.map((d) => d.principal)]);
}

export function formatApprovalList(list: ApprovalRecord[]): string {
  if (list.length === 0) return 'No approvals are waiting.';
  const rows = list.map((a) => [a.id, a.workflow, a.summary, `${a.approvals}/${a.required}`, a.expiresAt ?? '-', a.approvers]);
  const head = ['APPROVAL', 'WORKFLOW', 'SUMMARY', 'HAVE', 'EXPIRES', 'APPROVERS'];
  return table(head, rows);
}

/** The approvals section of `runs show`: who, when, decision, comment, parameters hash. */
export function formatRunApprovals(list: ApprovalRecord[], names: Names = new Map()): string {
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
    if (a.requester) out.push(`    requested by ${cliPerson(a.requester, names.get(a.requester))}`);
    if (a.escalations > 0) out.push(`    escalated ${a.escalations} time(s)`);
    if (a.supersededBy) out.push(`    voided: parameters changed; superseded by ${a.supersededBy}`);
    if (a.autoReason) out.push(`    approved by rule at ${a.resolvedAt ?? '?'}: ${a.autoReason}`);
    for (const d of a.decisions) {
      out.push(
        `    ${d.decidedAt}  ${pad(cliPerson(d.principal, d.name ?? names.get(d.principal)), 24)} ${pad(d.decision, 7)}${d.onBehalfOf ? ` on behalf of ${cliPerson(d.onBehalfOf, names.get(d.onBehalfOf))}` : ''}${d.comment ? ` "${d.comment}"` : ''}${d.via ? ` (via ${d.via}${d.osUser && d.osUser !== d.principal ? ` by ${d.osUser}` : ''})` : ''}`,
      );
    }
    if (a.status === 'expired') out.push(`    expired at ${a.expiresAt ?? '?'} with no decision: rejected`);
  }
  return out.join('\n');
}
