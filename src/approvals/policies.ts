/**
 * Applying a workflow's approval policy (policies as code, docs/policies.md): the rules are tried in
 * order against the workflow's parameters and the first that matches says what the gate needs:
 * approval by rule (with a reason), or approvers, a quorum, a deadline and an escalation. A
 * workflow asks `policyGate(policy, params)` for its gate's options instead of comparing
 * thresholds itself; the options carry the rule's id, the policy's version and digest, which the
 * gate records on the approval and in its `approval.requested` event.
 *
 * The policy is the project configuration's `policies.<workflow>` when given; otherwise the
 * workflow's default, built from its own settings (src/workflows/policies.ts), checked at start-up
 * like a configured one, except that a group nobody defined is left to run time so that Tollgate
 * starts without any configuration. A configured rule's condition on a parameter the workflow does
 * not have is refused when the workflow is built. Pure: nothing here reads the database.
 */
import { TollgateError } from '../common/errors.ts';
import type { ProjectConfig } from '../config/project-config.ts';
import { unknownKeyMessage, unknownKeys } from '../config/known-keys.ts';
import type { Duration } from '../runtime/duration.ts';
import { paramsHash } from './hash.ts';
import { policyIssues, type PolicyCondition, type PolicyRule, type PolicyWho, type Scalar, type WorkflowPolicyConfig } from './policies-schema.ts';
import type { ApprovalOptions, ApprovalPolicy, OnTimeout, PolicyRef } from './types.ts';

export type { PolicyRule, WorkflowPolicyConfig } from './policies-schema.ts';

/** A workflow's policy as it applies: configured, or the workflow's default. */
export interface EffectivePolicy {
  workflow: string;
  source: 'configured' | 'default';
  version: number | null;
  rules: readonly PolicyRule[];
  examples: readonly Record<string, Scalar>[];
  /** sha256 of the canonical JSON of `{ version, rules }`: what an audit compares. */
  digest: string;
}

/** What the first matching rule says for these parameters. */
export interface AppliedRule {
  ref: PolicyRef;
  /** 1-based position of the rule, for people. */
  position: number;
  /** The reason, when the rule approves by itself; null when people must. */
  auto: string | null;
  policy: ApprovalPolicy | null;
  timeout: Duration | undefined;
  escalate: { policy: ApprovalPolicy; timeout: Duration | undefined } | undefined;
  risk: 'low' | 'medium' | 'high' | undefined;
  rationale: string | undefined;
}

/** The digest recorded with every approval a policy opens. */
export function policyDigest(p: Pick<WorkflowPolicyConfig, 'version' | 'rules'>): string {
  return paramsHash({ version: p.version ?? null, rules: p.rules });
}

function effective(workflow: string, source: EffectivePolicy['source'], p: WorkflowPolicyConfig): EffectivePolicy {
  return {
    workflow,
    source,
    version: source === 'configured' ? (p.version ?? null) : null,
    rules: p.rules,
    examples: p.examples ?? [],
    digest: policyDigest(p),
  };
}

/**
 * The policy that applies to `workflow`: `policies.<workflow>` of the configuration (checked when it
 * loaded), else `fallback` (the workflow's default, checked here: TG_CONFIG_INVALID naming the rule
 * when a group it names is too small for its quorum). Undefined when there is neither.
 */
export function workflowPolicy(
  project: ProjectConfig,
  workflow: string,
  fallback?: WorkflowPolicyConfig,
  parameters?: readonly string[],
): EffectivePolicy | undefined {
  const configured = project.policies?.[workflow];
  if (configured) {
    if (parameters) checkParameters(workflow, configured, parameters);
    return effective(workflow, 'configured', configured);
  }
  if (!fallback) return undefined;
  const issues = policyIssues(() => `workflows.${workflow} (its default policy)`, fallback, project.groups, true);
  if (issues.length > 0) throw new TollgateError('TG_CONFIG_INVALID', `The project configuration is invalid:\n  ${issues.join('\n  ')}`);
  return effective(workflow, 'default', fallback);
}

/** A condition on a parameter the workflow does not have would never hold: a typo (`amout`) is refused, not ignored. */
function checkParameters(workflow: string, p: WorkflowPolicyConfig, parameters: readonly string[]): void {
  const lines = p.rules.flatMap((r, i) =>
    unknownKeys(r.when ?? {}, parameters).map(
      (k) => `policies.${workflow}.rules.${i}.when (rule "${r.id}"): ${unknownKeyMessage(k, parameters, `parameter of ${workflow}`)}`,
    ),
  );
  if (lines.length > 0) throw new TollgateError('TG_CONFIG_INVALID', `The project configuration is invalid:\n  ${lines.join('\n  ')}`);
}

function numberOf(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  return Number.NaN;
}

function asText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v) ?? '';
}

/** Whether a parameter's value passes every test of the condition; a missing value passes none. */
export function conditionHolds(c: PolicyCondition, v: unknown): boolean {
  if (v === undefined || v === null) return false;
  const n = numberOf(v);
  const num = (limit: number | undefined, ok: (x: number) => boolean) => limit === undefined || (!Number.isNaN(n) && ok(n));
  if (!num(c.below, (x) => x < (c.below as number))) return false;
  if (!num(c.atMost, (x) => x <= (c.atMost as number))) return false;
  if (!num(c.above, (x) => x > (c.above as number))) return false;
  if (!num(c.atLeast, (x) => x >= (c.atLeast as number))) return false;
  const text = asText(v);
  if (c.equals !== undefined && text !== String(c.equals)) return false;
  if (c.in !== undefined && !c.in.some((x) => String(x) === text)) return false;
  if (c.matches !== undefined && !new RegExp(c.matches, c.flags).test(text)) return false;
  return true;
}

export function ruleMatches(rule: PolicyRule, params: Readonly<Record<string, unknown>>): boolean {
  return Object.entries(rule.when ?? {}).every(([field, c]) => conditionHolds(c, params[field]));
}

/** "{amount} {currency} is …" with the parameters' values. */
function fill(text: string, params: Readonly<Record<string, unknown>>): string {
  return text.replace(/\{([A-Za-z0-9_.-]+)\}/g, (m, k: string) => (params[k] === undefined ? m : asText(params[k])));
}

export function toApprovalPolicy(w: PolicyWho): ApprovalPolicy {
  const base = w.allowSelfApproval === undefined ? {} : { allowSelfApproval: w.allowSelfApproval };
  if (Array.isArray(w.quorum))
    return { ...base, requirements: w.quorum.map((r) => ({ ...(r.group !== undefined ? { group: r.group } : { approvers: r.approvers }), count: r.count })) };
  return {
    ...base,
    ...(w.groups ? { groups: w.groups } : {}),
    ...(w.approvers ? { approvers: w.approvers } : {}),
    ...(w.quorum !== undefined ? { quorum: w.quorum } : {}),
  };
}

/** The first rule that matches `params` (the last rule has no `when`, so there always is one). */
export function applyPolicy(policy: EffectivePolicy, params: Readonly<Record<string, unknown>>): AppliedRule {
  const i = policy.rules.findIndex((r) => ruleMatches(r, params));
  const rule = policy.rules[i < 0 ? policy.rules.length - 1 : i] as PolicyRule;
  return {
    ref: { rule: rule.id, version: policy.version, digest: policy.digest },
    position: (i < 0 ? policy.rules.length - 1 : i) + 1,
    auto: rule.approve === undefined ? null : fill(rule.approve, params),
    policy: rule.approve === undefined ? toApprovalPolicy(rule) : null,
    timeout: rule.timeout,
    escalate: rule.escalate ? { policy: toApprovalPolicy(rule.escalate), timeout: rule.escalate.timeout } : undefined,
    risk: rule.risk,
    rationale: rule.rationale === undefined ? undefined : fill(rule.rationale, params),
  };
}

/** The gate options a rule gives: spread them into `ctx.approval` with the summary and the parameters shown. */
export type PolicyGateOptions = Pick<ApprovalOptions, 'policy' | 'autoApprove' | 'timeout' | 'onTimeout' | 'risk' | 'rationale' | 'policyRef'>;

export function policyGate(policy: EffectivePolicy, params: Readonly<Record<string, unknown>>): PolicyGateOptions {
  const a = applyPolicy(policy, params);
  const onTimeout: OnTimeout = a.escalate ? { escalate: a.escalate.policy, timeout: a.escalate.timeout } : 'reject';
  return {
    policy: a.policy ?? {},
    autoApprove: a.auto ?? false,
    timeout: a.auto ? undefined : a.timeout,
    onTimeout,
    risk: a.risk,
    rationale:
      a.rationale ??
      (a.auto ? undefined : `Rule "${a.ref.rule}" of the ${policy.workflow} policy${policy.version === null ? '' : ` (version ${policy.version})`} applies.`),
    policyRef: a.ref,
  };
}
