/**
 * The approval gate as the executor runs it (`ctx.approval`). First execution records the
 * approval, its journal step (kind 'approval', status 'running' while pending) and an event in
 * one statement, and the run suspends until a decision or the deadline wakes it. On replay the
 * gate reads the approval: still pending → suspend again (applying the timeout once it is due);
 * resolved → the decision is returned and recorded as the step's output.
 *
 * If a replay computes parameters whose hash differs from the recorded approval's, that approval
 * is voided and a new one requested (invariant 6): a decision is never applied to parameters
 * nobody was shown.
 *
 * This module never decides for a person; `decide.ts` records people's decisions.
 */
import { newId } from '../common/ids.ts';
import type { ProjectConfig } from '../config/project-config.ts';
import type { RunRow } from '../db/queries/runs.ts';
import {
  escalateApproval,
  expireApproval,
  insertApproval,
  isPast,
  lockStepApproval,
  voidApproval,
  type ApprovalRow,
  type StoredOnTimeout,
} from '../db/queries/approvals.ts';
import type { Queryable } from '../db/queryable.ts';
import { inTransaction } from '../db/transaction.ts';
import { parseDuration } from '../runtime/duration.ts';
import { traceApprovalWait } from '../telemetry/tracing-spans.ts';
import { paramsHash } from './hash.ts';
import { resolvePolicy } from './policy.ts';
import { withDelegates } from './delegation.ts';
import { describeApprovers, describeQuorum } from './describe.ts';
import { loadDecisions, requesterKey, toResult } from './store.ts';
import type { ApprovalOptions, ApprovalResult } from './types.ts';

export type GateOutcome = { kind: 'suspend'; wakeAt: Date | null } | { kind: 'done'; result: ApprovalResult };

function storedOnTimeout(o: ApprovalOptions['onTimeout']): StoredOnTimeout {
  if (!o || o === 'reject') return { action: 'reject' };
  return { action: 'escalate', policy: o.escalate, timeoutMs: o.timeout === undefined ? null : parseDuration(o.timeout) };
}

/** Runs the gate for step `idx` of `run`. `client` must be a dedicated connection (it opens a transaction). */
export async function runApprovalGate(
  client: Queryable,
  args: { run: RunRow; idx: number; step: string; options: ApprovalOptions; project: ProjectConfig },
): Promise<GateOutcome> {
  const { run, idx, step, options, project } = args;
  const hash = paramsHash(options.params);
  const toolHash = options.toolInput === undefined ? null : paramsHash(options.toolInput);
  return inTransaction(client, async () => {
    let row = await lockStepApproval(client, run.id, idx);
    if (row && (row.params_hash !== hash || row.tool_input_hash !== toolHash)) {
      const next = newId('apr');
      await voidApproval(client, row, next, hash);
      row = await createApproval(client, { run, idx, step, options, project, id: next, hash, toolHash });
    } else if (!row) {
      row = await createApproval(client, { run, idx, step, options, project, id: newId('apr'), hash, toolHash });
    }
    if (row.status === 'pending') {
      const due = await isPast(client, row.expires_at);
      if (row.expires_at && due) row = await applyTimeout(client, row, project);
    }
    if (row.status === 'pending') return { kind: 'suspend', wakeAt: row.expires_at } as const;
    const decisions = await loadDecisions(client, [row.id]);
    const result = toResult(row, decisions.get(row.id) ?? []);
    traceApprovalWait(run, row, result);
    return { kind: 'done', result } as const;
  });
}

async function createApproval(
  q: Queryable,
  a: { run: RunRow; idx: number; step: string; options: ApprovalOptions; project: ProjectConfig; id: string; hash: string; toolHash: string | null },
): Promise<ApprovalRow> {
  const { options: o } = a;
  const requester = requesterKey({ requester: a.run.requester as ApprovalRow['requester'] });
  const auto = typeof o.autoApprove === 'string' && o.autoApprove.length > 0 ? o.autoApprove : null;
  const where = `Approval "${a.step}" of workflow ${a.run.workflow}`;
  const policy = auto
    ? { approvers: [], groups: [], named: [], quorum: 'first' as const, required: 0, allowSelfApproval: false }
    : await withDelegates(q, resolvePolicy(o.policy, a.project, requester, where));
  const onTimeout = storedOnTimeout(o.onTimeout);
  // Check the escalation policy now, so a typo fails the run at once rather than at the deadline.
  if (!auto && onTimeout.action === 'escalate') resolvePolicy(onTimeout.policy, a.project, requester, `The escalation policy of ${where}`);
  const timeoutMs = auto || o.timeout === undefined ? null : parseDuration(o.timeout);
  return insertApproval(q, {
    id: a.id,
    runId: a.run.id,
    stepIdx: a.idx,
    name: a.step,
    policy,
    summary: o.summary,
    params: o.params,
    paramsHash: a.hash,
    risk: o.risk ?? null,
    rationale: o.rationale ?? null,
    tool: o.tool ?? null,
    toolInput: o.toolInput,
    toolInputHash: a.toolHash,
    requester: a.run.requester,
    timeoutMs,
    onTimeout,
    autoReason: auto,
    approversText: auto ? 'rule' : describeApprovers(policy),
    quorumText: auto ? 'none' : describeQuorum(policy),
    policyRef: o.policyRef ?? null,
    reusable: o.reusable === true,
  });
}

/**
 * The deadline passed: reject (status expired) or escalate once to another policy. Runs in the
 * caller's transaction with the approval row locked; records an event either way.
 */
export async function applyTimeout(q: Queryable, row: ApprovalRow, project: ProjectConfig): Promise<ApprovalRow> {
  const t = row.on_timeout ?? { action: 'reject' };
  if (t.action === 'escalate') {
    const policy = await withDelegates(q, resolvePolicy(t.policy, project, requesterKey(row), `Escalation of approval ${row.id}`));
    const escalated = await escalateApproval(q, row.id, { policy, timeoutMs: t.timeoutMs, from: describeApprovers(row.policy), to: describeApprovers(policy) });
    return { ...row, ...escalated };
  }
  return { ...row, ...(await expireApproval(q, row.id)) };
}
