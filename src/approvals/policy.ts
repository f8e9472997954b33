/**
 * Resolving an approval policy against the project configuration: groups become the principals
 * they name, the quorum becomes a number. Authorisation is exact membership of the resolved list:
 * a principal is `platform:tenant:user`, so someone from another Slack workspace or Teams tenant
 * is never matched by a group that names a different tenant's user.
 */
import { TollgateError } from '../common/errors.ts';
import { formatPrincipal, parsePrincipal, type Principal } from '../common/principals.ts';
import type { ProjectConfig } from '../config/project-config.ts';
import type { ApprovalPolicy, ResolvedPolicy } from '../db/queries/approvals.ts';
import { policyEligibility } from './eligibility.ts';
import { seatCount, seatsFilled } from './quorum.ts';

export function resolvePolicy(policy: ApprovalPolicy, project: ProjectConfig, requester: string | null, where: string): ResolvedPolicy {
  const requirements = policy.requirements?.map((r) => ({
    label: r.group !== undefined ? `group ${r.group}` : (r.approvers ?? []).join(', '),
    approvers: [...new Set([...(r.approvers ?? []).map(principalKey), ...(r.group !== undefined ? groupMembers(r.group, project, where) : [])])].sort(),
    count: r.count,
  }));
  const groups = [...new Set([...(policy.groups ?? []), ...(policy.requirements ?? []).flatMap((r) => (r.group !== undefined ? [r.group] : []))])];
  const named = [...new Set([...(policy.approvers ?? []), ...(policy.requirements ?? []).flatMap((r) => r.approvers ?? [])].map(principalKey))];
  const members = groups.flatMap((g) => groupMembers(g, project, where));
  const approvers = [...new Set([...named, ...members])].sort();
  const allowSelfApproval = policy.allowSelfApproval === true;
  const mayApprove = (p: string) => allowSelfApproval || p !== requester;
  const eligible = approvers.filter(mayApprove).length;
  const quorum = requirements ? seatCount(requirements) : (policy.quorum ?? 'first');
  let required: number;
  if (quorum === 'first') required = 1;
  else if (quorum === 'all') required = eligible;
  else if (Number.isInteger(quorum) && quorum >= 1) required = quorum;
  else throw new TollgateError('TG_APPROVAL_POLICY', `${where} has quorum ${String(quorum)}: give 'first', 'all' or an integer >= 1.`);
  const reachable = requirements ? seatsFilled(requirements, approvers.filter(mayApprove)) : eligible;
  if (eligible === 0 || required > reachable) {
    throw new TollgateError(
      'TG_APPROVAL_POLICY',
      `${where} can never be approved: it needs ${required || 1} approval(s)${requirements ? ` (${requirements.map((r) => `${r.count} of ${r.label}`).join(' and ')}, one person counting once)` : ''} but only ${reachable} ${requirements ? 'of them can be given' : 'principal(s) may approve'}` +
        `${requester && !allowSelfApproval && approvers.includes(requester) ? ` (the requester ${requester} may not approve their own request)` : ''}. ` +
        'Add approvers to the policy or its groups in the TOLLGATE_CONFIG file.',
      { approvers, required },
    );
  }
  return { approvers, groups, named, quorum, required, allowSelfApproval, ...(requirements ? { requirements } : {}) };
}

function groupMembers(g: string, project: ProjectConfig, where: string): string[] {
  const list = project.groups[g];
  if (!list) {
    const known = Object.keys(project.groups);
    throw new TollgateError(
      'TG_APPROVAL_POLICY',
      `${where} names group "${g}", which the project configuration does not define (groups: ${known.length ? known.join(', ') : 'none'}). ` +
        'Add it under "groups" in the TOLLGATE_CONFIG file.',
      { group: g },
    );
  }
  return list.map(principalKey);
}

export type Authorisation = { ok: true } | { ok: false; reason: string };

/**
 * May `who` record `decision` on a gate with this policy, requested by `requester`? The policy
 * half of the one eligibility rule (eligibility.ts), in the shape the counting callers read.
 */
export function authorise(p: ResolvedPolicy, who: string, requester: string | null, decision: 'approve' | 'reject'): Authorisation {
  const e = policyEligibility(p, who, requester, decision);
  return e.may ? { ok: true } : { ok: false, reason: e.message };
}

export function principalKey(p: Principal | string): string {
  return typeof p === 'string' ? formatPrincipal(parsePrincipal(p)) : formatPrincipal(p);
}
