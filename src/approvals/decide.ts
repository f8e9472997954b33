/**
 * Recording a person's decision on an approval, for the adapters and the CLI. One transaction:
 * lock the approval, check its state and the principal's authorisation, record the decision
 * (one per approver: the primary key makes a repeat a no-op), append events, and — when the
 * policy is now satisfied or someone rejected — resolve the gate and enqueue the run's advance.
 *
 * The principal must come from a verified platform identity (invariant 5); this module trusts
 * what it is given and never reads identities from button values.
 */
import type pg from 'pg';
import type { Principal } from '../common/principals.ts';
import type { ProjectConfig } from '../config/project-config.ts';
import { withRetriedTransaction } from '../db/transaction.ts';
import { isTerminalStatus } from '../db/queries/runs.ts';
import { enqueueAdvance } from '../db/queries/jobs.ts';
import { findDecision, insertDecision, isPast, resolveApproval, selectDecisions } from '../db/queries/approvals.ts';
import { appendEvent } from '../db/queries/events.ts';
import type { Queryable } from '../db/queryable.ts';
import { applyTimeout } from './gate.ts';
import { countApprovals, policyEligibility, type DecisionFacts } from './eligibility.ts';
import { principalKey } from './policy.ts';
import { describeQuorum } from './describe.ts';
import { getApproval, requesterKey } from './store.ts';
import { loadApprovalRow, type ApprovalRow } from '../db/queries/approvals.ts';
import type { DecideOutcome } from './types.ts';
import { observeApprovalDecision } from '../telemetry/metrics.ts';

export interface DecideOptions {
  comment?: string;
  /** Where the decision was made ('slack', 'teams', 'cli'), kept with it. */
  via?: string;
  /**
   * From the CLI: the OS user who typed the command (`cli:<host>:<user>`), kept with the decision
   * and in its event even when the decision is made as another principal (`--as`).
   */
  osUser?: string;
  /** The params hash the decider was shown; a mismatch answers 'parameters_changed'. */
  paramsHash?: string;
}

export async function decide(
  pool: pg.Pool,
  project: ProjectConfig,
  approvalId: string,
  principal: Principal | string,
  decision: 'approve' | 'reject',
  opts: DecideOptions = {},
): Promise<DecideOutcome> {
  const outcome = await withRetriedTransaction(pool, (q) => decideWithin(q, project, approvalId, principal, decision, opts));
  observeDecided(outcome);
  // Return the state after commit, so the adapter renders what others will see.
  const view = await getApproval(pool, approvalId);
  return view ? { ...outcome, approval: view } : outcome;
}

/**
 * The same decision inside the caller's transaction, for a caller that records more with it
 * (the chat layer's deferred click: the decision and its explanation commit together). The
 * outcome carries no `approval` view: the caller's transaction has not committed yet.
 */
export async function decideWithin(
  q: Queryable,
  project: ProjectConfig,
  approvalId: string,
  principal: Principal | string,
  decision: 'approve' | 'reject',
  opts: DecideOptions = {},
): Promise<DecideOutcome> {
  const who = principalKey(principal);
  const actor = typeof principal === 'string' ? { ...parseKey(who) } : principal;
  return decideIn(q, project, approvalId, who, actor, decision, opts);
}

/** Time-to-decision of a decision that ended its gate; call once the decision committed. */
export function observeDecided(outcome: DecideOutcome): void {
  if (outcome.resolved && outcome.opened) observeApprovalDecision(outcome.opened.workflow, outcome.resolved, outcome.opened.at);
}

function parseKey(key: string): Principal {
  const [platform, tenant, user] = key.split(':') as [Principal['platform'], string, string];
  return { platform, tenant, user };
}

async function decideIn(
  q: Queryable,
  project: ProjectConfig,
  approvalId: string,
  who: string,
  actor: Principal,
  decision: 'approve' | 'reject',
  opts: DecideOptions,
): Promise<DecideOutcome> {
  let row = await loadApprovalRow(q, approvalId, true);
  if (!row) {
    return { kind: 'not_found', message: `No approval with id "${approvalId}". List pending approvals with \`tollgate approvals list\`.` };
  }
  const earlier = await findDecision(q, approvalId, who);
  if (earlier) {
    return {
      kind: 'already_recorded',
      message: `Your decision (${earlier.decision}) on ${approvalId} was already recorded at ${earlier.decided_at.toISOString()}; nothing changed.`,
    };
  }
  if (row.status === 'voided') {
    return {
      kind: 'parameters_changed',
      message:
        `The parameters of ${approvalId} changed after it was shown, so it no longer applies` +
        (row.superseded_by ? `; decide on the new request ${row.superseded_by} instead.` : '.'),
    };
  }
  if (row.status === 'cancelled' || (row.status === 'pending' && isTerminalStatus(row.run_status ?? ''))) {
    return { kind: 'already_resolved', message: `Run ${row.run_id} has already ended (${row.run_status}); ${approvalId} no longer needs a decision.` };
  }
  if (row.status === 'pending' && row.expires_at) {
    if (await isPast(q, row.expires_at)) {
      row = { ...row, ...(await applyTimeout(q, row, project)) };
      await enqueueAdvance(q, row.run_id);
    }
  }
  if (row.status === 'expired') {
    return { kind: 'expired', message: `${approvalId} expired at ${row.expires_at?.toISOString() ?? '?'} and was rejected; decisions are no longer accepted.` };
  }
  if (row.status !== 'pending') {
    return {
      kind: 'already_resolved',
      message: `${approvalId} was already ${row.status}${row.auto_reason ? ` by rule (${row.auto_reason})` : ''}; your decision was not needed.`,
    };
  }
  if (opts.paramsHash !== undefined && opts.paramsHash !== row.params_hash) {
    return {
      kind: 'parameters_changed',
      message: `The parameters you were shown (hash ${opts.paramsHash.slice(0, 12)}…) are not those of ${approvalId} (hash ${row.params_hash.slice(0, 12)}…); reload it and decide again.`,
    };
  }
  const requester = requesterKey(row);
  // The decisions so far tell whose place a delegate takes (one decision per approver's place).
  const auth = policyEligibility(row.policy, who, requester, decision, await decisionsOn(q, approvalId));
  if (!auth.may) {
    if (auth.reason === 'already_recorded') return { kind: 'already_recorded', message: auth.message };
    return { kind: 'not_allowed', message: `Not allowed: ${auth.message}` };
  }
  return record(q, { row, approvalId, who, actor, decision, opts, requester, onBehalfOf: auth.onBehalfOf ?? null });
}

/** Records an allowed decision and its event; resolves the gate when the policy is met or someone rejected. */
async function record(
  q: Queryable,
  d: {
    row: ApprovalRow;
    approvalId: string;
    who: string;
    actor: Principal;
    decision: 'approve' | 'reject';
    opts: DecideOptions;
    requester: string | null;
    onBehalfOf: string | null;
  },
): Promise<DecideOutcome> {
  const { row, approvalId, who, actor, decision, opts, requester, onBehalfOf } = d;
  const behalf = onBehalfOf ? ` on behalf of ${onBehalfOf}` : '';

  const inserted = await insertDecision(q, {
    approvalId,
    principal: who,
    decision,
    comment: opts.comment ?? null,
    via: opts.via ?? null,
    osUser: opts.osUser ?? null,
    onBehalfOf,
  });
  if (!inserted) {
    return { kind: 'already_recorded', message: `Your decision on ${approvalId} was already recorded; nothing changed.` };
  }
  await appendEvent(q, {
    runId: row.run_id,
    type: 'approval.decided',
    stepIdx: row.step_idx,
    actor,
    payload: stripNulls({
      approvalId,
      decision,
      comment: opts.comment ?? null,
      via: opts.via ?? null,
      osUser: opts.osUser ?? null,
      onBehalfOf,
      paramsHash: row.params_hash,
    }),
  });
  const have = countApprovals(row.policy, requester, await decisionsOn(q, approvalId));
  const resolved = decision === 'reject' ? 'rejected' : have >= row.policy.required ? 'approved' : null;
  if (resolved) {
    await resolveApproval(q, approvalId, resolved, actor);
    await enqueueAdvance(q, row.run_id);
    return {
      kind: 'recorded',
      resolved,
      opened: { workflow: row.workflow, at: row.created_at },
      message:
        resolved === 'approved'
          ? `Approved${behalf}: ${approvalId} has the approvals it needs (${describeQuorum(row.policy)}); the run continues.`
          : `Rejected${behalf}: ${approvalId} is rejected; the run is told.`,
    };
  }
  return {
    kind: 'recorded',
    message: `Recorded your approval of ${approvalId}${behalf}: ${have} of the ${row.policy.required} needed so far.`,
  };
}

/**
 * The decisions on an approval as the eligibility rule reads them. Counting goes through the rule:
 * only principals the current policy allows count (after an escalation, the new approvers and
 * their delegates), one per approver's place.
 */
async function decisionsOn(q: Queryable, approvalId: string): Promise<DecisionFacts[]> {
  return (await selectDecisions(q, [approvalId])).map((d) => ({ principal: d.principal, decision: d.decision, onBehalfOf: d.on_behalf_of }));
}

function stripNulls(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined));
}
