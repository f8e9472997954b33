/**
 * Policies' dry run, for `tollgate policy test` and `tollgate policy diff` (src/cli/commands/policy.ts):
 * which rule applies to some parameters and what it asks for, with each group's members as the
 * configuration names them; and, between two configurations, the sample inputs whose outcome
 * changes. Samples come from the rules' own boundaries (each number −1, at, +1; each value a
 * condition names; each pattern's examples) and the policies' declared examples. Pure: no database,
 * nothing started.
 */
import { formatPrincipal, parsePrincipal } from '../common/principals.ts';
import type { ProjectConfig } from '../config/project-config.ts';
import { parseDuration } from '../runtime/duration.ts';
import { canonicalJson } from './hash.ts';
import { applyPolicy, type EffectivePolicy } from './policies.ts';
import type { PolicyCondition, Scalar } from './policies-schema.ts';
import type { ApprovalPolicy } from './types.ts';

export interface WhoExplained {
  /** Each group with the principals the configuration lists for it (null: no such group). */
  groups: { group: string; members: string[] | null }[];
  named: string[];
  quorum: string;
}

export interface RuleExplained {
  workflow: string;
  source: EffectivePolicy['source'];
  version: number | null;
  digest: string;
  rule: string;
  position: number;
  /** The reason when approved by rule; null when people decide. */
  approvedByRule: string | null;
  approvers: WhoExplained | null;
  deadline: string | null;
  escalation: (WhoExplained & { deadline: string | null }) | null;
}

function who(p: ApprovalPolicy, project: ProjectConfig): WhoExplained {
  const members = (g: string) => project.groups[g]?.map((m) => formatPrincipal(parsePrincipal(m))) ?? null;
  if (p.requirements) {
    return {
      groups: p.requirements.flatMap((r) => (r.group !== undefined ? [{ group: r.group, members: members(r.group) }] : [])),
      named: p.requirements.flatMap((r) => [...(r.approvers ?? [])]),
      quorum: p.requirements.map((r) => `${r.count} of ${r.group !== undefined ? `group ${r.group}` : (r.approvers ?? []).join(', ')}`).join(' and '),
    };
  }
  const q = p.quorum ?? 'first';
  return {
    groups: (p.groups ?? []).map((g) => ({ group: g, members: members(g) })),
    named: [...(p.approvers ?? [])],
    quorum: q === 'first' ? 'any one' : q === 'all' ? 'all of them' : `${q} of them`,
  };
}

function deadline(d: string | number | undefined): string | null {
  if (d === undefined) return null;
  return typeof d === 'number' ? `${d} ms` : d;
}

/** Which rule of `policy` applies to `params`, and what it asks for. */
export function explainRule(project: ProjectConfig, policy: EffectivePolicy, params: Readonly<Record<string, unknown>>): RuleExplained {
  const a = applyPolicy(policy, params);
  return {
    workflow: policy.workflow,
    source: policy.source,
    version: policy.version,
    digest: policy.digest,
    rule: a.ref.rule,
    position: a.position,
    approvedByRule: a.auto,
    approvers: a.policy ? who(a.policy, project) : null,
    deadline: a.auto ? null : deadline(a.timeout),
    escalation: a.escalate ? { ...who(a.escalate.policy, project), deadline: deadline(a.escalate.timeout) } : null,
  };
}

function whoLines(w: WhoExplained): string {
  const parts = [
    ...w.groups.map((g) => `group ${g.group}: ${g.members === null ? '(not defined in groups)' : g.members.join(', ') || '(no members)'}`),
    ...(w.named.length ? [`named: ${w.named.join(', ')}`] : []),
  ];
  return parts.join('; ');
}

/** `tollgate policy test`'s text. */
export function formatExplained(e: RuleExplained): string[] {
  const policy =
    e.source === 'default' ? `default policy (from workflows.${e.workflow} settings)` : `policy${e.version === null ? '' : ` version ${e.version}`}`;
  const lines = [`${e.workflow}: ${policy}, digest ${e.digest}`, `rule: ${e.rule} (rule ${e.position})`];
  if (e.approvedByRule !== null) return [...lines, `approved by rule: ${e.approvedByRule}`, 'approvers: none needed', 'quorum: none', 'deadline: none'];
  const w = e.approvers as WhoExplained;
  lines.push(`approvers: ${whoLines(w)}`, `quorum: ${w.quorum}`);
  const esc = e.escalation;
  lines.push(`deadline: ${e.deadline ?? 'none'}${e.deadline ? (esc ? ', then escalated' : ', then rejected') : ''}`);
  if (esc) lines.push(`escalation: ${whoLines(esc)}; quorum: ${esc.quorum}; deadline: ${esc.deadline ?? 'none'}${esc.deadline ? ', then rejected' : ''}`);
  return lines;
}

/** What a person would notice of an outcome: by rule or not, who (members included), quorum, deadlines. Not the rule's id or wording. */
export function outcomeOf(e: RuleExplained): string {
  const ms = (d: string | null) => (d === null ? null : parseDuration(/^\d+ ms$/.test(d) ? Number(d.slice(0, -3)) : d));
  const norm = (w: WhoExplained | null) =>
    w && { groups: w.groups.map((g) => ({ ...g, members: g.members && [...g.members].sort() })), named: [...w.named].sort(), quorum: w.quorum };
  return canonicalJson({
    byRule: e.approvedByRule !== null,
    approvers: norm(e.approvers),
    deadline: ms(e.deadline),
    escalation: e.escalation && { ...norm(e.escalation), deadline: ms(e.escalation.deadline) },
  });
}

/** One line for an outcome: "rule small: approved by rule" / "rule large: 2 of group finance and 1 of group cfo, deadline 24h". */
export function outcomeLine(e: RuleExplained): string {
  if (e.approvedByRule !== null) return `rule ${e.rule}: approved by rule`;
  const w = e.approvers as WhoExplained;
  const members = w.groups.map((g) => `${g.group} = ${g.members === null ? '(undefined)' : g.members.length}`).join(', ');
  const esc = e.escalation ? `, then ${e.escalation.quorum} after ${e.deadline ?? '?'}` : '';
  return `rule ${e.rule}: ${w.quorum}${w.groups.length ? ` [${members}]` : ''}${w.named.length ? ` of ${w.named.join(', ')}` : ''}${e.deadline ? `, deadline ${e.deadline}` : ''}${esc}`;
}

function conditionSamples(c: PolicyCondition): Scalar[] {
  const out: Scalar[] = [];
  for (const n of [c.below, c.atMost, c.above, c.atLeast]) if (n !== undefined) out.push(n - 1, n, n + 1);
  if (c.equals !== undefined) out.push(c.equals);
  if (c.in) out.push(...c.in);
  if (c.examples) out.push(...c.examples);
  if (c.matches !== undefined) {
    // A pattern that is a plain word with anchors (`^prod`, `^(prod|live)$`) gives its words as samples.
    const words = c.matches
      .replace(/^\^/, '')
      .replace(/\$$/, '')
      .replace(/^\((.*)\)$/, '$1')
      .split('|');
    out.push(...words.filter((w) => /^[A-Za-z0-9 _.-]+$/.test(w)));
  }
  if (c.equals !== undefined || c.in || c.matches !== undefined) out.push('other');
  return out;
}

const MAX_SAMPLES = 2000;

/** Sample inputs for these policies: every combination of each parameter's boundary values, and the declared examples. */
export function samplesFor(policies: readonly EffectivePolicy[]): Record<string, Scalar>[] {
  const byField = new Map<string, Scalar[]>();
  for (const p of policies) {
    for (const r of p.rules) {
      for (const [field, c] of Object.entries(r.when ?? {})) byField.set(field, [...(byField.get(field) ?? []), ...conditionSamples(c)]);
    }
  }
  const fields = [...byField.keys()].sort();
  const values = fields.map((f) => [...new Map((byField.get(f) ?? []).map((v) => [canonicalJson(v), v])).values()]);
  let combos: Record<string, Scalar>[] = [{}];
  const total = values.reduce((n, v) => n * Math.max(1, v.length), 1);
  if (total <= MAX_SAMPLES) {
    fields.forEach((f, i) => {
      combos = combos.flatMap((c) => (values[i] ?? []).map((v) => ({ ...c, [f]: v })));
    });
  } else {
    // Too many combinations: vary one parameter at a time, the others at their first value.
    const base = Object.fromEntries(fields.map((f, i) => [f, values[i]?.[0] as Scalar]));
    combos = fields.flatMap((f, i) => (values[i] ?? []).map((v) => ({ ...base, [f]: v })));
  }
  const all = [...combos, ...policies.flatMap((p) => p.examples)];
  return [...new Map(all.filter((s) => Object.keys(s).length > 0).map((s) => [canonicalJson(s), s])).values()];
}

export interface OutcomeChange {
  input: Record<string, Scalar>;
  before: RuleExplained;
  after: RuleExplained;
}

/** The sample inputs whose outcome differs between two configurations' policies of one workflow. */
export function diffPolicies(
  before: { project: ProjectConfig; policy: EffectivePolicy },
  after: { project: ProjectConfig; policy: EffectivePolicy },
): { samples: number; changes: OutcomeChange[] } {
  const samples = samplesFor([before.policy, after.policy]);
  const changes = samples.flatMap((input) => {
    const b = explainRule(before.project, before.policy, input);
    const a = explainRule(after.project, after.policy, input);
    return outcomeOf(a) === outcomeOf(b) ? [] : [{ input, before: b, after: a }];
  });
  return { samples: samples.length, changes };
}

/** `amount=50001 environment=prod`. */
export function formatInput(input: Readonly<Record<string, unknown>>): string {
  return Object.entries(input)
    .map(([k, v]) => `${k}=${String(v as Scalar)}`)
    .join(' ');
}
