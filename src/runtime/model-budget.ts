/**
 * A workflow's cost budget for model steps (`defineWorkflow({ budget })`), as `Replay.model`
 * checks it before each model step (src/runtime/replay.ts `#budgetGate`): the check recorded as a
 * journal value `budget-check:<step>`, the approval asked for when it gates, and the error when
 * that approval is refused. Only the sentences and numbers live here; the replay records and
 * gates, so the decision is taken once and replayed, never recomputed.
 */
import { NonRetriableError } from '../common/errors.ts';
import type { ApprovalOptions, ApprovalResult } from '../approvals/types.ts';
import type { ModelCallRecord, ModelClient } from '../model/types.ts';
import { formatUsd, type ModelStepCall } from '../model/steps.ts';
import type { ModelBudget } from './workflow.ts';

/** The recorded check: whether the step waits for an approval, and the figures it was decided on. */
export interface BudgetDecision {
  gate: boolean;
  model?: string | null;
  estimateUsd: number | null;
  spentUsd: number;
  maxCostUsd: number;
}

/**
 * Whether the step's call must wait for an approval: when what the run's calls cost so far
 * (`spent()`, read only if there is a model) plus this call's estimate would pass the budget, or
 * when the call cannot be estimated (no price for the model).
 */
export async function checkBudget(
  client: ModelClient | undefined,
  call: ModelStepCall,
  budget: ModelBudget,
  spent: () => Promise<Pick<ModelCallRecord, 'costUsd'>[]>,
): Promise<BudgetDecision> {
  // No model: the step fails for good on its own, with the reason; there is nothing to spend.
  if (!client?.configured) return { gate: false, estimateUsd: null, spentUsd: 0, maxCostUsd: budget.maxCostUsd };
  const estimateUsd = client.estimateCostUsd(call.input, call.options.maxOutputTokens);
  const calls = await spent();
  const spentUsd = calls.reduce((sum, c) => sum + (c.costUsd ?? 0), 0);
  const gate = estimateUsd === null || spentUsd + estimateUsd > budget.maxCostUsd;
  return { gate, model: client.model ?? null, estimateUsd, spentUsd, maxCostUsd: budget.maxCostUsd };
}

/** Why the step needs a person: over the budget, or a budget that cannot be checked. */
function whyOver(decision: BudgetDecision): string {
  return decision.estimateUsd === null
    ? `its cost cannot be estimated (no price for model ${decision.model ?? '?'} in model.prices), so the budget of ${formatUsd(decision.maxCostUsd)} cannot be checked`
    : `its estimated ${formatUsd(decision.estimateUsd)} would take the run past its budget of ${formatUsd(decision.maxCostUsd)} (${formatUsd(decision.spentUsd)} spent so far)`;
}

/** The approval the step waits for (`budget:<step>`), by the budget's policy. */
export function budgetApproval(workflow: string, step: string, budget: ModelBudget, decision: BudgetDecision): ApprovalOptions {
  return {
    policy: budget.approval,
    summary: `Model step "${step}" of ${workflow}: ${whyOver(decision)}.`,
    params: {
      step,
      model: decision.model ?? null,
      estimate: formatUsd(decision.estimateUsd),
      spent: formatUsd(decision.spentUsd),
      budget: formatUsd(decision.maxCostUsd),
    },
    risk: 'medium',
    rationale: `Workflow ${workflow} allows ${formatUsd(decision.maxCostUsd)} of model calls per run; approving lets this step's call go ahead.`,
  };
}

/** The step's failure for good when its budget approval was rejected or expired. */
export function budgetRefused(runId: string, step: string, decision: BudgetDecision, gate: ApprovalResult): NonRetriableError {
  const why =
    gate.status === 'expired'
      ? `approval ${gate.approvalId} expired with no decision`
      : `${gate.by ?? 'an approver'} rejected approval ${gate.approvalId}${gate.comment ? `: "${gate.comment}"` : ''}`;
  // TG_APPROVAL_REJECTED: a retry would meet the same decision (src/runtime/retryable.ts).
  return new NonRetriableError(`Model step "${step}" not run: ${whyOver(decision)}, and ${why}.`, undefined, 'TG_APPROVAL_REJECTED', {
    runId,
    step,
    approvalId: gate.approvalId,
    status: gate.status,
    by: gate.by,
    estimateUsd: decision.estimateUsd,
    spentUsd: decision.spentUsd,
    maxCostUsd: decision.maxCostUsd,
  });
}
