/**
 * Approval policies as code: the shape of the project configuration's `policies` key (one policy per
 * workflow: an ordered list of rules over the workflow's parameters) and the check, when the
 * configuration loads, that every rule and every escalation can be met by the groups the same file
 * defines. The rules themselves are applied by src/approvals/policies.ts; docs/policies.md is the
 * manual.
 *
 *   "policies": { "purchase-order": { "version": 3, "rules": [
 *     { "id": "small", "when": { "amount": { "below": 1000 } }, "approve": "below 1,000" },
 *     { "id": "medium", "when": { "amount": { "atMost": 50000 } }, "groups": ["finance"] },
 *     { "id": "large", "quorum": [{ "group": "finance", "count": 2 }, { "group": "cfo", "count": 1 }], "timeout": "24h" } ] } }
 *
 * Imports nothing of the configuration module (which imports this one) and nothing that reads the
 * database.
 */
import { z } from 'zod';
import { formatPrincipal, parsePrincipal } from '../common/principals.ts';
import { unknownKeyMessage } from '../config/known-keys.ts';
import { durationSetting } from '../runtime/duration.ts';
import { seatCount, seatsFilled } from './quorum.ts';

function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? iss.keys.map((k) => unknownKeyMessage(k, known)).join(' ') : undefined),
  });
}

const principal = z.string().superRefine((s, ctx) => {
  try {
    parsePrincipal(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

const duration = durationSetting;

const scalar = z.union([z.string(), z.number(), z.boolean()]);
export type Scalar = z.infer<typeof scalar>;

const TESTS = ['below', 'atMost', 'above', 'atLeast', 'equals', 'in', 'matches'] as const;

/** A condition on one parameter; every test given must hold. */
export const conditionSchema = strict({
  below: z.number().optional(),
  atMost: z.number().optional(),
  above: z.number().optional(),
  atLeast: z.number().optional(),
  equals: scalar.optional(),
  in: z
    .array(z.union([z.string(), z.number()]))
    .min(1)
    .optional(),
  /** A regular expression the value (as text) must match. */
  matches: z.string().min(1).optional(),
  flags: z
    .string()
    .regex(/^[imsu]*$/, { error: 'may only hold the flags i, m, s and u' })
    .optional(),
  /** Values `tollgate policy diff` tries for this parameter (those a pattern matches and some it does not). */
  examples: z.array(z.union([z.string(), z.number()])).optional(),
}).superRefine((c, ctx) => {
  if (!TESTS.some((t) => c[t] !== undefined)) ctx.addIssue({ code: 'custom', message: `needs at least one test: ${TESTS.join(', ')}` });
  if (c.matches !== undefined) {
    try {
      new RegExp(c.matches, c.flags);
    } catch (e) {
      ctx.addIssue({ code: 'custom', path: ['matches'], message: `is not a valid regular expression: ${(e as Error).message}` });
    }
  } else if (c.flags !== undefined) ctx.addIssue({ code: 'custom', path: ['flags'], message: 'applies to `matches` only' });
});
export type PolicyCondition = z.infer<typeof conditionSchema>;

const requirementSchema = strict({
  group: z.string().min(1).optional(),
  approvers: z.array(principal).min(1).optional(),
  count: z.number().int().min(1),
}).refine((r) => (r.group === undefined) !== (r.approvers === undefined), { message: 'give either `group` or `approvers`' });

/** Who may approve: groups and named principals with a quorum, or a quorum by group (a list of requirements). */
const who = {
  groups: z.array(z.string().min(1)).optional(),
  approvers: z.array(principal).optional(),
  /** 'first' (default), 'all', a number, or [{ group, count }, …] ("two of finance and one of cfo"). */
  quorum: z.union([z.number().int().min(1), z.enum(['first', 'all']), z.array(requirementSchema).min(1)]).optional(),
  allowSelfApproval: z.boolean().optional(),
};
export type PolicyWho = { [K in keyof typeof who]?: z.infer<(typeof who)[K]> };

function checkWhoShape(w: PolicyWho, ctx: z.RefinementCtx): void {
  const listed = Array.isArray(w.quorum);
  if (listed && (w.groups !== undefined || w.approvers !== undefined)) {
    ctx.addIssue({ code: 'custom', path: ['quorum'], message: 'a quorum by group names its approvers itself; leave out `groups` and `approvers`' });
  }
  if (!listed && !w.groups?.length && !w.approvers?.length) {
    ctx.addIssue({ code: 'custom', message: 'names nobody who may approve: give `groups`, `approvers` or a quorum by group' });
  }
}

const escalationSchema = strict({ ...who, timeout: duration.optional() }).superRefine(checkWhoShape);

export const ruleSchema = strict({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: 'must be letters, digits, ".", "_" or "-"' }),
  /** Conditions by parameter name; all must hold. A rule without `when` applies to every input. */
  when: z.record(z.string(), conditionSchema).optional(),
  /** Approve at once by rule, recording this reason ("{amount}" is replaced by the parameter's value). */
  approve: z.string().min(1).optional(),
  ...who,
  /** How long approvers have; no deadline when omitted. */
  timeout: duration.optional(),
  /** At the deadline, escalate once to these approvers (with their own `timeout`) instead of rejecting. */
  escalate: escalationSchema.optional(),
  risk: z.enum(['low', 'medium', 'high']).optional(),
  /** Why approval is asked, shown to approvers ("{amount}" replaced as in `approve`). */
  rationale: z.string().min(1).optional(),
}).superRefine((r, ctx) => {
  if (r.approve === undefined) return checkWhoShape(r, ctx);
  const extra = (['groups', 'approvers', 'quorum', 'allowSelfApproval', 'timeout', 'escalate'] as const).filter((k) => r[k] !== undefined);
  if (extra.length) ctx.addIssue({ code: 'custom', message: `approves by rule, so it takes no ${extra.join(', ')}` });
});
export type PolicyRule = z.infer<typeof ruleSchema>;

export const workflowPolicySchema = strict({
  /** The policy's version, recorded with every approval it opens (with the policy's digest). */
  version: z.number().int().min(1).optional(),
  rules: z.array(ruleSchema).min(1),
  /** Inputs `tollgate policy diff` always tries, besides those drawn from the rules' own boundaries. */
  examples: z.array(z.record(z.string(), scalar)).optional(),
}).superRefine((p, ctx) => {
  const seen = new Set<string>();
  p.rules.forEach((r, i) => {
    if (seen.has(r.id))
      ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `"${r.id}" is the id of an earlier rule too; give each rule its own` });
    seen.add(r.id);
    if (r.escalate && r.timeout === undefined) {
      ctx.addIssue({ code: 'custom', path: ['rules', i, 'escalate'], message: `(rule "${r.id}") escalates at the deadline, so the rule needs a \`timeout\`` });
    }
    if (!r.when && i < p.rules.length - 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['rules', i + 1],
        message: `(rule "${p.rules[i + 1]?.id}") can never apply: rule "${r.id}" before it has no \`when\``,
      });
    }
  });
  const last = p.rules[p.rules.length - 1];
  if (last?.when) {
    ctx.addIssue({
      code: 'custom',
      path: ['rules', p.rules.length - 1, 'when'],
      message: `(rule "${last.id}"): the last rule must have no \`when\`, so that every input has an outcome`,
    });
  }
});
export type WorkflowPolicyConfig = z.infer<typeof workflowPolicySchema>;

export const policiesSchema = z.record(z.string(), workflowPolicySchema);

/**
 * Why a rule's approvers can never give the approvals it needs, with the groups as `groups` defines
 * them; undefined when they can. `missingGroupsOk`: a group nobody defined is left to run time (a
 * built-in default policy, so that Tollgate starts without any configuration).
 */
export function unmeetable(w: PolicyWho, groups: Readonly<Record<string, readonly string[]>>, missingGroupsOk = false): string | undefined {
  const reqs = Array.isArray(w.quorum) ? w.quorum : undefined;
  const named = [...(w.groups ?? []), ...(reqs ?? []).flatMap((r) => (r.group !== undefined ? [r.group] : []))];
  const missing = named.filter((g) => !groups[g]);
  if (missing.length) {
    if (missingGroupsOk) return undefined;
    const known = Object.keys(groups);
    return `names group "${missing[0]}", which "groups" does not define (groups: ${known.length ? known.join(', ') : 'none'})`;
  }
  const key = (p: string) => formatPrincipal(parsePrincipal(p));
  const members = (g: string) => (groups[g] ?? []).map(key);
  if (reqs) {
    const seats = reqs.map((r) => ({
      label: r.group !== undefined ? `group ${r.group}` : 'the approvers named',
      approvers: r.group !== undefined ? members(r.group) : (r.approvers ?? []).map(key),
      count: r.count,
    }));
    const short = seats.find((s) => s.approvers.length < s.count);
    if (short) return `can never be met: it needs ${short.count} of ${short.label}, which has ${describeMembers(short.approvers)}`;
    const everyone = [...new Set(seats.flatMap((s) => s.approvers))];
    if (seatsFilled(seats, everyone) < seatCount(seats)) {
      return `can never be met: it needs ${seats.map((s) => `${s.count} of ${s.label}`).join(' and ')} from different people, and ${describeMembers(everyone)} cannot fill all ${seatCount(seats)} places`;
    }
    return undefined;
  }
  const everyone = [...new Set([...(w.approvers ?? []).map(key), ...(w.groups ?? []).flatMap(members)])];
  const q = w.quorum ?? 'first';
  const need = typeof q === 'number' ? q : 1;
  if (everyone.length < need) {
    const from = [...(w.groups ?? []).map((g) => `group ${g}`), ...(w.approvers?.length ? ['the approvers named'] : [])].join(' and ');
    return `can never be met: it needs ${need} approval${need === 1 ? '' : 's'} from ${from}, which ${everyone.length === 1 ? 'has' : 'have'} ${describeMembers(everyone)}`;
  }
  return undefined;
}

function describeMembers(list: readonly string[]): string {
  if (list.length === 0) return 'no members';
  return `only ${list.length} member${list.length === 1 ? '' : 's'} (${list.join(', ')})`;
}

/**
 * Every rule and escalation of `policy` that can never be met, as lines naming where:
 * `<where> (rule "large"): the escalation can never be met: …`.
 */
export function policyIssues(
  where: (i: number) => string,
  policy: WorkflowPolicyConfig,
  groups: Readonly<Record<string, readonly string[]>>,
  missingGroupsOk = false,
): string[] {
  return policy.rules.flatMap((r, i) => {
    if (r.approve !== undefined) return [];
    const own = unmeetable(r, groups, missingGroupsOk);
    const esc = r.escalate ? unmeetable(r.escalate, groups, missingGroupsOk) : undefined;
    return [...(own ? [`${where(i)} (rule "${r.id}"): ${own}.`] : []), ...(esc ? [`${where(i)} (rule "${r.id}"): its escalation ${esc}.`] : [])];
  });
}
