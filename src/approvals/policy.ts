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

export function resolvePolicy(policy: ApprovalPolicy, project: ProjectConfig, requester: string | null, where: string): ResolvedPolicy {
  const groups = [...(policy.groups ?? [])];
  const named = (policy.approvers ?? []).map((p) => formatPrincipal(parsePrincipal(p)));
  const members: string[] = [];
  for (const g of groups) {
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
    members.push(...list.map((p) => formatPrincipal(parsePrincipal(p))));
  }
  const approvers = [...new Set([...named, ...members])].sort();
  const allowSelfApproval = policy.allowSelfApproval === true;
  const eligible = approvers.filter((p) => allowSelfApproval || p !== requester).length;
  const quorum = policy.quorum ?? 'first';
  let required: number;
  if (quorum === 'first') required = 1;
  else if (quorum === 'all') required = eligible;
  else if (Number.isInteger(quorum) && quorum >= 1) required = quorum;
  else throw new TollgateError('TG_APPROVAL_POLICY', `${where} has quorum ${String(quorum)}: give 'first', 'all' or an integer >= 1.`);
  if (eligible === 0 || required > eligible) {
    throw new TollgateError(
      'TG_APPROVAL_POLICY',
      `${where} can never be approved: it needs ${required || 1} approval(s) but only ${eligible} principal(s) may approve` +
        `${requester && !allowSelfApproval && approvers.includes(requester) ? ` (the requester ${requester} may not approve their own request)` : ''}. ` +
        'Add approvers to the policy or its groups in the TOLLGATE_CONFIG file.',
      { approvers, required },
    );
  }
  return { approvers, groups, named, quorum, required, allowSelfApproval };
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
