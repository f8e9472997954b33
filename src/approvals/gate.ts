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
import type { Queryable } from '../db/queryable.ts';
import { parseDuration } from '../runtime/workflow.ts';
import { traceApprovalWait } from '../telemetry/tracing-spans.ts';
import { paramsHash } from './hash.ts';
import { describeApprovers, describeQuorum, resolvePolicy } from './policy.ts';
import { loadDecisions, requesterKey, toResult, type ApprovalRow, type StoredOnTimeout } from './store.ts';
import type { ApprovalOptions, ApprovalResult } from './types.ts';

export type GateOutcome = { kind: 'suspend'; wakeAt: Date | null } | { kind: 'done'; result: ApprovalResult };

export async function inTransaction<T>(q: Queryable, fn: () => Promise<T>): Promise<T> {
  await q.query('BEGIN');
  try {
    const out = await fn();
    await q.query('COMMIT');
    return out;
  } catch (e) {
    await q.query('ROLLBACK').catch(() => {});
    throw e;
  }
}

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
    const found = await client.query<ApprovalRow>(
      `SELECT * FROM tollgate.approvals WHERE run_id = $1 AND step_idx = $2 AND status <> 'voided' FOR UPDATE`,
      [run.id, idx],
    );
    let row = found.rows[0];
    if (row && (row.params_hash !== hash || row.tool_input_hash !== toolHash)) {
      const next = newId('apr');
      await client.query(
        `WITH a AS (UPDATE tollgate.approvals SET status = 'voided', superseded_by = $2, resolved_at = now() WHERE id = $1
                    RETURNING id, run_id, step_idx, params_hash, status AS previous)
         INSERT INTO tollgate.events (run_id, type, step_idx, payload)
         SELECT run_id, 'approval.voided', step_idx, jsonb_build_object('approvalId', id, 'supersededBy', $2::text,
                'reason', 'parameters changed', 'paramsHash', params_hash, 'newParamsHash', $3::text, 'wasStatus', $4::text) FROM a`,
        [row.id, next, hash, row.status],
      );
      row = await createApproval(client, { run, idx, step, options, project, id: next, hash, toolHash });
    } else if (!row) {
      row = await createApproval(client, { run, idx, step, options, project, id: newId('apr'), hash, toolHash });
    }
    if (row.status === 'pending') {
      const due = await client.query<{ due: boolean }>('SELECT $1::timestamptz <= now() AS due', [row.expires_at]);
      if (row.expires_at && due.rows[0]?.due) row = await applyTimeout(client, row, project);
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
    : resolvePolicy(o.policy, a.project, requester, where);
  const onTimeout = storedOnTimeout(o.onTimeout);
  // Check the escalation policy now, so a typo fails the run at once rather than at the deadline.
  if (!auto && onTimeout.action === 'escalate') resolvePolicy(onTimeout.policy, a.project, requester, `The escalation policy of ${where}`);
  const timeoutMs = auto || o.timeout === undefined ? null : parseDuration(o.timeout);
  const { rows } = await q.query<ApprovalRow>(
    `WITH a AS (
       INSERT INTO tollgate.approvals (id, run_id, step_idx, name, status, policy, summary, params, params_hash, risk, rationale,
         tool, tool_input, tool_input_hash, requester, expires_at, on_timeout, auto_reason, resolved_at)
       VALUES ($1, $2, $3, $4, CASE WHEN $17::text IS NULL THEN 'pending' ELSE 'approved' END, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
         CASE WHEN $15::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $15::float8 / 1000) END, $16, $17,
         CASE WHEN $17::text IS NULL THEN NULL ELSE now() END)
       RETURNING *),
     s AS (
       INSERT INTO tollgate.steps (run_id, idx, name, kind, status, input, attempts)
       SELECT run_id, step_idx, name, 'approval', 'running', jsonb_build_object('approvalId', id, 'paramsHash', params_hash), 1 FROM a
       ON CONFLICT (run_id, idx) DO UPDATE SET input = EXCLUDED.input, status = 'running', updated_at = now()),
     e AS (
       INSERT INTO tollgate.events (run_id, type, step_idx, actor, payload)
       SELECT run_id, CASE WHEN auto_reason IS NULL THEN 'approval.requested' ELSE 'approval.auto_approved' END, step_idx, requester,
         jsonb_strip_nulls(jsonb_build_object('approvalId', id, 'name', name, 'paramsHash', params_hash, 'tool', tool,
           'approvers', $18::text, 'quorum', $19::text, 'expiresAt', expires_at, 'reason', auto_reason)) FROM a)
     SELECT * FROM a`,
    [
      a.id,
      a.run.id,
      a.idx,
      a.step,
      JSON.stringify(policy),
      o.summary,
      JSON.stringify(o.params),
      a.hash,
      o.risk ?? null,
      o.rationale ?? null,
      o.tool ?? null,
      o.toolInput === undefined ? null : JSON.stringify(o.toolInput),
      a.toolHash,
      a.run.requester === null || a.run.requester === undefined ? null : JSON.stringify(a.run.requester),
      timeoutMs,
      JSON.stringify(onTimeout),
      auto,
      auto ? 'rule' : describeApprovers(policy),
      auto ? 'none' : describeQuorum(policy),
    ],
  );
  return rows[0] as ApprovalRow;
}

/**
 * The deadline passed: reject (status expired) or escalate once to another policy. Runs in the
 * caller's transaction with the approval row locked; records an event either way.
 */
export async function applyTimeout(q: Queryable, row: ApprovalRow, project: ProjectConfig): Promise<ApprovalRow> {
  const t = row.on_timeout ?? { action: 'reject' };
  if (t.action === 'escalate') {
    const policy = resolvePolicy(t.policy, project, requesterKey(row), `Escalation of approval ${row.id}`);
    const { rows } = await q.query<ApprovalRow>(
      `WITH a AS (
         UPDATE tollgate.approvals SET policy = $2, escalations = escalations + 1, on_timeout = '{"action":"reject"}'::jsonb,
           expires_at = CASE WHEN $3::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $3::float8 / 1000) END
         WHERE id = $1 RETURNING *),
       e AS (
         INSERT INTO tollgate.events (run_id, type, step_idx, payload)
         SELECT run_id, 'approval.escalated', step_idx, jsonb_strip_nulls(jsonb_build_object('approvalId', id,
           'from', $4::text, 'to', $5::text, 'expiresAt', expires_at)) FROM a)
       SELECT * FROM a`,
      [row.id, JSON.stringify(policy), t.timeoutMs, describeApprovers(row.policy), describeApprovers(policy)],
    );
    return { ...row, ...(rows[0] as ApprovalRow) };
  }
  const { rows } = await q.query<ApprovalRow>(
    `WITH a AS (UPDATE tollgate.approvals SET status = 'expired', resolved_at = now() WHERE id = $1 RETURNING *),
     e AS (INSERT INTO tollgate.events (run_id, type, step_idx, payload)
       SELECT run_id, 'approval.expired', step_idx, jsonb_build_object('approvalId', id, 'expiresAt', expires_at, 'outcome', 'rejected') FROM a)
     SELECT * FROM a`,
    [row.id],
  );
  return { ...row, ...(rows[0] as ApprovalRow) };
}

/** The run was cancelled while this gate waited: the approval is closed, with an event. */
export async function cancelPendingApproval(q: Queryable, runId: string, idx: number): Promise<void> {
  await q.query(
    `WITH a AS (UPDATE tollgate.approvals SET status = 'cancelled', resolved_at = now()
                WHERE run_id = $1 AND step_idx = $2 AND status = 'pending' RETURNING id, run_id, step_idx)
     INSERT INTO tollgate.events (run_id, type, step_idx, payload)
     SELECT run_id, 'approval.cancelled', step_idx, jsonb_build_object('approvalId', id, 'reason', 'run cancelled') FROM a`,
    [runId, idx],
  );
}
