/** A resolved policy, for people: who may approve, and how many must. */
import type { ResolvedPolicy } from './types.ts';

export function describeApprovers(p: Pick<ResolvedPolicy, 'approvers' | 'groups' | 'named'>): string {
  const parts = [...p.groups.map((g) => `group ${g}`), ...p.named.map((n) => n)];
  return `${parts.join(', ') || 'nobody'} (${p.approvers.length} ${p.approvers.length === 1 ? 'person' : 'people'})`;
}

export function describeQuorum(p: ResolvedPolicy): string {
  if (p.requirements) return p.requirements.map((r) => `${r.count} of ${r.label}`).join(' and ');
  if (p.quorum === 'first') return `any one of ${p.approvers.length}`;
  if (p.quorum === 'all') return `all ${p.required}`;
  return `${p.required} of ${p.approvers.length}`;
}
