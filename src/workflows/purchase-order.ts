/**
 * `purchase-order`: inputs vendor, amount, currency, reason (and optional vendorContact, sent
 * with the vendor notification only). Who approves is the workflow's policy
 * (src/approvals/policies.ts): `policies.purchase-order` when configured, else the default built
 * from the settings below: orders above `workflows.purchase-order.approvalThreshold` (default
 * 1000, in the order's currency) need an approval by group `finance`; smaller ones pass a gate
 * approved by rule, so the ledger write is always covered by a recorded approval bound to the
 * order's exact parameters. The order is written to the Postgres ledger (`purchase-orders.create`,
 * idempotent per call). If the vendor notification fails for good, the run ends failed with the
 * order kept, for a person to put right (Edit and retry, Resolve by hand) or to void it (Skip and
 * compensate); see docs/operator-control.md.
 *
 * A rejection or expiry ends the run as failed with TG_APPROVAL_REJECTED, naming who and why.
 */
import { z } from 'zod';
import { TollgateError } from '../common/errors.ts';
import { projectSection, type ProjectConfig } from '../config/project-config.ts';
import { defineWorkflow } from '../runtime/workflow.ts';
import type { WorkflowPolicyConfig } from '../approvals/policies-schema.ts';
import { policyGate, workflowPolicy, type EffectivePolicy } from '../approvals/policies.ts';
import { PO_TOOL } from '../tools/purchase-orders.ts';
import { rejectionError } from './rejection.ts';
import { durationSetting } from '../runtime/duration.ts';

export const purchaseOrderSettings = z.object({
  approvalThreshold: z.number().min(0).default(1000),
  /** Who approves above the threshold (default: group finance) and how many must agree. */
  approverGroup: z.string().min(1).default('finance'),
  quorum: z.union([z.number().int().min(1), z.enum(['first', 'all'])]).default('first'),
  /** e.g. "24h"; no timeout when unset. */
  approvalTimeout: durationSetting.optional(),
  /** On timeout: reject (unset) or escalate to this group. */
  escalateToGroup: z.string().min(1).optional(),
  /** POSTed the order after it is written; a failure for good voids the order. */
  notifyUrl: z.string().url().optional(),
});

export const purchaseOrderInput = z.object({
  vendor: z.string().trim().min(1).max(200).describe('Who is paid'),
  amount: z.coerce.number().positive().describe('Amount, in currency'),
  currency: z
    .string()
    .regex(/^[A-Za-z]{3}$/, 'a three-letter ISO code such as EUR')
    .transform((s) => s.toUpperCase())
    .describe('ISO currency code, e.g. EUR'),
  reason: z.string().trim().min(1).max(2000).describe('What it is for'),
  vendorContact: z.string().trim().min(1).max(200).optional().describe('Who at the vendor receives the order (sent with the vendor notification only)'),
});

/**
 * The default policy, from the settings: at or below the threshold approved by rule; above it the
 * approver group with its quorum, deadline and escalation (risk high above ten times the threshold).
 */
export function purchaseOrderPolicy(project: ProjectConfig): WorkflowPolicyConfig {
  const s = projectSection(project, 'workflows', 'purchase-order', purchaseOrderSettings);
  const t = s.approvalThreshold;
  const people = {
    groups: [s.approverGroup],
    quorum: s.quorum,
    ...(s.approvalTimeout === undefined ? {} : { timeout: s.approvalTimeout }),
    // Without a deadline an escalation never happens: only a timeout makes it part of the policy.
    ...(s.escalateToGroup && s.approvalTimeout !== undefined
      ? { escalate: { groups: [s.escalateToGroup], quorum: s.quorum, timeout: s.approvalTimeout } }
      : {}),
    rationale: `{amount} {currency} is above the approval threshold of ${t}.`,
  };
  return {
    rules: [
      {
        id: 'at-or-below-threshold',
        when: { amount: { atMost: t } },
        approve: `{amount} {currency} is at or below the approval threshold of ${t}`,
        risk: 'low',
      },
      { id: 'far-above-threshold', when: { amount: { above: t * 10 } }, ...people, risk: 'high' },
      { id: 'above-threshold', ...people, risk: 'medium' },
    ],
    examples: [{ amount: t }, { amount: t + 1 }],
  };
}

/** What "Resolve by hand" gives for the vendor notification: the status to record, e.g. {"status": 200, "note": "phoned"}. */
const notifiedByHand = z.object({ status: z.number().int(), note: z.string().max(500).optional() });

export function purchaseOrderWorkflow(project: ProjectConfig) {
  const settings = projectSection(project, 'workflows', 'purchase-order', purchaseOrderSettings);
  // Checked now (start-up): a rule or escalation its groups can never satisfy is refused, naming it.
  const policy = workflowPolicy(project, 'purchase-order', purchaseOrderPolicy(project), Object.keys(purchaseOrderInput.shape)) as EffectivePolicy;
  return defineWorkflow({
    name: 'purchase-order',
    version: 1,
    description:
      policy.source === 'default'
        ? `Raise a purchase order; above ${settings.approvalThreshold} it needs approval by group ${settings.approverGroup}.`
        : `Raise a purchase order; approval follows policy${policy.version === null ? '' : ` version ${policy.version}`} (rules ${policy.rules.map((r) => r.id).join(', ')}).`,
    input: purchaseOrderInput,
    tools: [PO_TOOL],
    run: async (ctx) => {
      const { vendor, amount, currency, reason, vendorContact } = ctx.input;
      const params = { vendor, amount, currency, reason };
      const gate = await ctx.approval('approval', {
        ...policyGate(policy, params),
        summary: `Purchase order: ${amount} ${currency} to ${vendor} for ${reason}`,
        params,
        tool: PO_TOOL,
      });
      if (!gate.approved) throw rejectionError('Purchase order', gate, ctx.runId);
      const order = await ctx.tool<{ orderId: string; status: string }>(PO_TOOL, params, { compensate: true });
      if (settings.notifyUrl) {
        const url = settings.notifyUrl;
        await ctx.step(
          'notify vendor',
          async ({ idempotencyKey, signal }) => {
            const res = await fetch(url, {
              method: 'POST',
              headers: { 'Content-Type': 'application/json', 'Idempotency-Key': idempotencyKey },
              body: JSON.stringify({ orderId: order.orderId, ...params, ...(vendorContact ? { vendorContact } : {}) }),
              signal, // aborted by the step's own timeout below
            });
            if (!res.ok)
              throw new TollgateError('TG_TOOL_HTTP_STATUS', `The vendor notification at ${new URL(url).host} answered ${res.status}.`, { status: res.status });
            return { status: res.status };
          },
          {
            retry: { maxAttempts: 3, initialDelayMs: 100 },
            timeoutMs: 10_000,
            // A failed notification keeps the order and waits for a person: Edit and retry (a wrong
            // vendorContact), Resolve by hand (the vendor was told another way), Skip and
            // compensate (void the order), or Give up (docs/operator-control.md).
            resolvable: { byHand: true, skip: true, giveUp: true, output: notifiedByHand },
          },
        );
      }
      return { orderId: order.orderId, approvalId: gate.approvalId, approvedBy: gate.auto ? `rule: ${gate.auto}` : gate.by };
    },
  });
}
