/**
 * Approvals and decisions (`tollgate.approvals`, `tollgate.approval_decisions`): every statement
 * the gate (src/approvals/gate.ts), decisions (src/approvals/decide.ts), the read views
 * (src/approvals/store.ts) and the tool check (src/tools/invoke.ts) run. A statement that changes
 * an approval appends its event in the same statement (data-modifying CTEs). Nothing here decides
 * who may decide; src/approvals does.
 */
import type { Principal } from '../../common/principals.ts';
import type { Queryable } from '../queryable.ts';
import { INSERT_EVENTS } from './events.ts';

// ----- the stored shapes (src/approvals/types.ts re-exports them) --------------------------------

/**
 * Who may decide, and how many must agree. Approvers are principals written
 * `platform:tenant:user` and groups from the project configuration; membership is exact, so a
 * principal of another tenant is allowed only if a group or the list names it.
 */
export interface ApprovalPolicy {
  approvers?: readonly string[];
  groups?: readonly string[];
  /** 'first' (default): one approval; a number N: N of the approvers; 'all': every approver. */
  quorum?: number | 'first' | 'all';
  /** May the run's requester approve their own request? Default false. */
  allowSelfApproval?: boolean;
  /**
   * Quorum by group ("two of finance and one of cfo"): each requirement needs `count` approvals
   * from its group's members or its named approvers, one person counting toward one requirement.
   * When given, it replaces `quorum`, and the approvers are everyone the requirements name.
   */
  requirements?: readonly ApprovalRequirement[];
}

/** One requirement of a quorum by group: `count` approvals of `group` (or of the `approvers` named). */
export interface ApprovalRequirement {
  group?: string;
  approvers?: readonly string[];
  count: number;
}

export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired' | 'voided' | 'cancelled';

/** The policy as resolved when the gate opened or escalated: stored with the approval. */
export interface ResolvedPolicy {
  approvers: string[];
  groups: string[];
  named: string[];
  quorum: number | 'first' | 'all';
  required: number;
  allowSelfApproval: boolean;
  /** A quorum by group, resolved: who counts toward each requirement (`label`: "group cfo"). */
  requirements?: { label: string; approvers: string[]; count: number }[];
  /**
   * Who may stand in for an approver, found when the gate opened or escalated
   * (src/approvals/delegation.ts): each delegate that is not an approver in its own right, whose
   * place it may take, and the chain of delegations that leads there. Absent: no delegation.
   */
  delegations?: DelegatedSeat[];
}

/** A delegate of an approval and the approver whose place it may take, through `chain` (delegator first, delegate last). */
export interface DelegatedSeat {
  delegate: string;
  onBehalfOf: string;
  chain: string[];
}

export type StoredOnTimeout = { action: 'reject' } | { action: 'escalate'; policy: ApprovalPolicy; timeoutMs: number | null };

export interface ApprovalRow {
  id: string;
  run_id: string;
  step_idx: number;
  name: string;
  status: ApprovalStatus;
  policy: ResolvedPolicy;
  summary: string;
  params: unknown;
  params_hash: string;
  risk: string | null;
  rationale: string | null;
  tool: string | null;
  tool_input: unknown;
  tool_input_hash: string | null;
  requester: Principal | null;
  expires_at: Date | null;
  on_timeout: StoredOnTimeout | null;
  escalations: number;
  auto_reason: string | null;
  superseded_by: string | null;
  created_at: Date;
  resolved_at: Date | null;
  /** The configured policy that opened the gate (migration 000020); null when the workflow named its approvers in code. */
  policy_rule?: string | null;
  policy_version?: number | null;
  policy_digest?: string | null;
  /** Whether the approval covers more than one execution of its tool call, and the step that used it. */
  reusable?: boolean;
  consumed_step_idx?: number | null;
  workflow?: string;
  run_status?: string;
  /** The requester's display name in the directory, when read with the run (never used to authorise). */
  requester_name?: string | null;
}

export interface DecisionRow {
  approval_id: string;
  principal: string;
  decision: 'approve' | 'reject';
  comment: string | null;
  via: string | null;
  os_user: string | null;
  /** The approver whose place a delegate's decision took (migration 000021); null in one's own right. */
  on_behalf_of: string | null;
  /** The decider's display name when they decided (migration 000025); null when none was known. */
  display_name: string | null;
  decided_at: Date;
}

// ----- reads -------------------------------------------------------------------------------------

// The requester's display name (tollgate.people, migration 000025) comes along, one key lookup, so
// every copy can name them without a read of its own.
const SELECT = `SELECT a.*, r.workflow, r.status AS run_status,
    (SELECT display_name FROM tollgate.people
      WHERE principal = (a.requester->>'platform') || ':' || (a.requester->>'tenant') || ':' || (a.requester->>'user')) AS requester_name
  FROM tollgate.approvals a JOIN tollgate.runs r ON r.id = a.run_id`;

/** An approval with its run's workflow and status; `lock` locks the approval's row. */
export async function loadApprovalRow(q: Queryable, id: string, lock = false): Promise<ApprovalRow | undefined> {
  const { rows } = await q.query<ApprovalRow>(`${SELECT} WHERE a.id = $1${lock ? ' FOR UPDATE OF a' : ''}`, [id]);
  return rows[0];
}

/** Approvals waiting for a decision (of live runs or not), oldest first. */
export async function selectPendingApprovals(q: Queryable): Promise<ApprovalRow[]> {
  const { rows } = await q.query<ApprovalRow>(`${SELECT} WHERE a.status = 'pending' ORDER BY a.created_at, a.id`);
  return rows;
}

/** Every approval of a run (voided ones included), in step order. */
export async function selectRunApprovals(q: Queryable, runId: string): Promise<ApprovalRow[]> {
  const { rows } = await q.query<ApprovalRow>(`${SELECT} WHERE a.run_id = $1 ORDER BY a.step_idx, a.created_at`, [runId]);
  return rows;
}

/** The decisions on these approvals, in the order they were made. */
export async function selectDecisions(q: Queryable, ids: string[]): Promise<DecisionRow[]> {
  const { rows } = await q.query<DecisionRow>('SELECT * FROM tollgate.approval_decisions WHERE approval_id = ANY($1) ORDER BY decided_at, principal', [ids]);
  return rows;
}

/** The principal's decision on the approval, if recorded. */
export async function findDecision(q: Queryable, approvalId: string, principal: string): Promise<{ decision: string; decided_at: Date } | undefined> {
  const { rows } = await q.query<{ decision: string; decided_at: Date }>(
    'SELECT decision, decided_at FROM tollgate.approval_decisions WHERE approval_id = $1 AND principal = $2',
    [approvalId, principal],
  );
  return rows[0];
}

/** Every principal any approval of the run names as an approver. */
export async function selectRunApprovers(q: Queryable, runId: string): Promise<string[]> {
  const { rows } = await q.query<{ principal: string }>(
    `SELECT DISTINCT jsonb_array_elements_text(policy->'approvers') AS principal FROM tollgate.approvals WHERE run_id = $1`,
    [runId],
  );
  return rows.map((r) => r.principal);
}

/** Whether `at` has passed by the database's clock (the one deadlines are set by); false for null. */
export async function isPast(q: Queryable, at: Date | null): Promise<boolean> {
  const { rows } = await q.query<{ due: boolean }>('SELECT $1::timestamptz <= now() AS due', [at]);
  return rows[0]?.due === true;
}

/**
 * The run's approved gate that covers the call of `tool` at journal step `stepIdx` whose input
 * hashes to `hash`, consuming it: one the same step already used (a replay of the same execution)
 * first, then a reusable one, then the newest unused one, which is marked used by this step with
 * an `approval.consumed` event. Undefined when none is left.
 */
export async function consumeCoveringApproval(q: Queryable, runId: string, tool: string, hash: string, stepIdx: number): Promise<string | undefined> {
  const { rows } = await q.query<{ id: string }>(
    `WITH c AS (
       SELECT id, reusable, consumed_step_idx FROM tollgate.approvals
       WHERE run_id = $1 AND status = 'approved' AND (tool IS NULL OR tool = $2) AND coalesce(tool_input_hash, params_hash) = $3
         AND (reusable OR consumed_step_idx IS NULL OR consumed_step_idx = $4)
       ORDER BY consumed_step_idx = $4 DESC NULLS LAST, reusable DESC, resolved_at DESC LIMIT 1 FOR UPDATE),
     u AS (
       UPDATE tollgate.approvals a SET consumed_step_idx = $4 FROM c
       WHERE a.id = c.id AND NOT c.reusable AND c.consumed_step_idx IS NULL RETURNING a.id, a.run_id),
     e AS (
       ${INSERT_EVENTS}
       SELECT run_id, 'approval.consumed', $4, NULL, jsonb_build_object('approvalId', id, 'tool', $2::text, 'paramsHash', $3::text) FROM u)
     SELECT id FROM c`,
    [runId, tool, hash, stepIdx],
  );
  return rows[0]?.id;
}

/** Whether an approved gate of the run covers these parameters but was used by another step (for the refusal's message). */
export async function findUsedApproval(
  q: Queryable,
  runId: string,
  tool: string,
  hash: string,
): Promise<{ id: string; consumed_step_idx: number } | undefined> {
  const { rows } = await q.query<{ id: string; consumed_step_idx: number }>(
    `SELECT id, consumed_step_idx FROM tollgate.approvals
     WHERE run_id = $1 AND status = 'approved' AND (tool IS NULL OR tool = $2) AND coalesce(tool_input_hash, params_hash) = $3
       AND consumed_step_idx IS NOT NULL ORDER BY resolved_at DESC LIMIT 1`,
    [runId, tool, hash],
  );
  return rows[0];
}

// ----- the gate ----------------------------------------------------------------------------------

/** The step's approval that still applies (not voided), locked. */
export async function lockStepApproval(q: Queryable, runId: string, idx: number): Promise<ApprovalRow | undefined> {
  const { rows } = await q.query<ApprovalRow>(`SELECT * FROM tollgate.approvals WHERE run_id = $1 AND step_idx = $2 AND status <> 'voided' FOR UPDATE`, [
    runId,
    idx,
  ]);
  return rows[0];
}

/** Voids an approval whose parameters changed, naming the one that replaces it, with its event. */
export async function voidApproval(q: Queryable, row: Pick<ApprovalRow, 'id' | 'status'>, supersededBy: string, newParamsHash: string): Promise<void> {
  await q.query(
    `WITH a AS (UPDATE tollgate.approvals SET status = 'voided', superseded_by = $2, resolved_at = now() WHERE id = $1
                    RETURNING id, run_id, step_idx, params_hash, status AS previous)
         ${INSERT_EVENTS}
         SELECT run_id, 'approval.voided', step_idx, NULL, jsonb_build_object('approvalId', id, 'supersededBy', $2::text,
                'reason', 'parameters changed', 'paramsHash', params_hash, 'newParamsHash', $3::text, 'wasStatus', $4::text) FROM a`,
    [row.id, supersededBy, newParamsHash, row.status],
  );
}

export interface NewApproval {
  id: string;
  runId: string;
  stepIdx: number;
  name: string;
  policy: ResolvedPolicy;
  summary: string;
  params: unknown;
  paramsHash: string;
  risk: string | null;
  rationale: string | null;
  tool: string | null;
  toolInput: unknown;
  toolInputHash: string | null;
  requester: unknown;
  timeoutMs: number | null;
  onTimeout: StoredOnTimeout;
  /** Approved at once by rule, for this reason; pending when null. */
  autoReason: string | null;
  /** People-readable approvers and quorum, for the event. */
  approversText: string;
  quorumText: string;
  /** The configured policy's rule, version and digest that opened the gate (recorded on the row and in the event). */
  policyRef?: { rule: string; version: number | null; digest: string } | null;
  /** Covers every call of its tool with these parameters in the run, not one. */
  reusable?: boolean;
}

/**
 * Records an approval, its journal step (kind 'approval', 'running' while pending) and its event
 * (`approval.requested`, or `approval.auto_approved` by rule) in one statement.
 */
export async function insertApproval(q: Queryable, a: NewApproval): Promise<ApprovalRow> {
  const { rows } = await q.query<ApprovalRow>(
    `WITH a AS (
       INSERT INTO tollgate.approvals (id, run_id, step_idx, name, status, policy, summary, params, params_hash, risk, rationale,
         tool, tool_input, tool_input_hash, requester, expires_at, on_timeout, auto_reason, resolved_at,
         policy_rule, policy_version, policy_digest, reusable)
       VALUES ($1, $2, $3, $4, CASE WHEN $17::text IS NULL THEN 'pending' ELSE 'approved' END, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
         CASE WHEN $15::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $15::float8 / 1000) END, $16, $17,
         CASE WHEN $17::text IS NULL THEN NULL ELSE now() END, $20, $21, $22, $23)
       RETURNING *),
     s AS (
       INSERT INTO tollgate.steps (run_id, idx, name, kind, status, input, attempts)
       SELECT run_id, step_idx, name, 'approval', 'running', jsonb_build_object('approvalId', id, 'paramsHash', params_hash), 1 FROM a
       ON CONFLICT (run_id, idx) DO UPDATE SET input = EXCLUDED.input, status = 'running', updated_at = now()),
     e AS (
       ${INSERT_EVENTS}
       SELECT run_id, CASE WHEN auto_reason IS NULL THEN 'approval.requested' ELSE 'approval.auto_approved' END, step_idx, requester,
         jsonb_strip_nulls(jsonb_build_object('approvalId', id, 'name', name, 'paramsHash', params_hash, 'tool', tool,
           'approvers', $18::text, 'quorum', $19::text, 'expiresAt', expires_at, 'reason', auto_reason,
           'policyRule', policy_rule, 'policyVersion', policy_version, 'policyDigest', policy_digest)) FROM a)
     SELECT * FROM a`,
    [
      a.id,
      a.runId,
      a.stepIdx,
      a.name,
      JSON.stringify(a.policy),
      a.summary,
      JSON.stringify(a.params),
      a.paramsHash,
      a.risk,
      a.rationale,
      a.tool,
      a.toolInput === undefined ? null : JSON.stringify(a.toolInput),
      a.toolInputHash,
      a.requester === null || a.requester === undefined ? null : JSON.stringify(a.requester),
      a.timeoutMs,
      JSON.stringify(a.onTimeout),
      a.autoReason,
      a.approversText,
      a.quorumText,
      a.policyRef?.rule ?? null,
      a.policyRef?.version ?? null,
      a.policyRef?.digest ?? null,
      a.reusable === true,
    ],
  );
  return rows[0] as ApprovalRow;
}

/**
 * Escalates once to `policy` (its own deadline `timeoutMs` from now, rejected when that passes),
 * with an `approval.escalated` event naming the approvers before (`from`) and after (`to`).
 */
export async function escalateApproval(
  q: Queryable,
  id: string,
  e: { policy: ResolvedPolicy; timeoutMs: number | null; from: string; to: string },
): Promise<ApprovalRow> {
  const { rows } = await q.query<ApprovalRow>(
    `WITH a AS (
         UPDATE tollgate.approvals SET policy = $2, escalations = escalations + 1, on_timeout = '{"action":"reject"}'::jsonb,
           expires_at = CASE WHEN $3::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $3::float8 / 1000) END
         WHERE id = $1 RETURNING *),
       e AS (
         ${INSERT_EVENTS}
         SELECT run_id, 'approval.escalated', step_idx, NULL, jsonb_strip_nulls(jsonb_build_object('approvalId', id,
           'from', $4::text, 'to', $5::text, 'expiresAt', expires_at)) FROM a)
       SELECT * FROM a`,
    [id, JSON.stringify(e.policy), e.timeoutMs, e.from, e.to],
  );
  return rows[0] as ApprovalRow;
}

/** The deadline passed with no escalation left: expired (a rejection), with its event. */
export async function expireApproval(q: Queryable, id: string): Promise<ApprovalRow> {
  const { rows } = await q.query<ApprovalRow>(
    `WITH a AS (UPDATE tollgate.approvals SET status = 'expired', resolved_at = now() WHERE id = $1 RETURNING *),
     e AS (${INSERT_EVENTS}
       SELECT run_id, 'approval.expired', step_idx, NULL, jsonb_build_object('approvalId', id, 'expiresAt', expires_at, 'outcome', 'rejected') FROM a)
     SELECT * FROM a`,
    [id],
  );
  return rows[0] as ApprovalRow;
}

/** The run was cancelled while this gate waited: the approval is closed, with an event. */
export async function cancelPendingApproval(q: Queryable, runId: string, idx: number): Promise<void> {
  await q.query(
    `WITH a AS (UPDATE tollgate.approvals SET status = 'cancelled', resolved_at = now()
                WHERE run_id = $1 AND step_idx = $2 AND status = 'pending' RETURNING id, run_id, step_idx)
     ${INSERT_EVENTS}
     SELECT run_id, 'approval.cancelled', step_idx, NULL, jsonb_build_object('approvalId', id, 'reason', 'run cancelled') FROM a`,
    [runId, idx],
  );
}

// ----- decisions ---------------------------------------------------------------------------------

/**
 * Records a decision; false when this principal's decision was already there (nothing written).
 * The name kept beside it is the one the directory (tollgate.people) has for the principal at
 * this moment: the name the decision was made under.
 */
export async function insertDecision(
  q: Queryable,
  d: {
    approvalId: string;
    principal: string;
    decision: 'approve' | 'reject';
    comment: string | null;
    via: string | null;
    osUser: string | null;
    onBehalfOf?: string | null;
  },
): Promise<boolean> {
  const inserted = await q.query(
    `INSERT INTO tollgate.approval_decisions (approval_id, principal, decision, comment, via, os_user, on_behalf_of, display_name)
     VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT display_name FROM tollgate.people WHERE principal = $2))
     ON CONFLICT (approval_id, principal) DO NOTHING RETURNING principal`,
    [d.approvalId, d.principal, d.decision, d.comment, d.via, d.osUser, d.onBehalfOf ?? null],
  );
  return inserted.rowCount !== 0;
}

/** Ends the gate (approved or rejected) by `actor`'s decision, with its event. */
export async function resolveApproval(q: Queryable, approvalId: string, resolved: 'approved' | 'rejected', actor: unknown): Promise<void> {
  await q.query(
    `WITH a AS (UPDATE tollgate.approvals SET status = $2, resolved_at = now() WHERE id = $1 RETURNING run_id, step_idx, params_hash)
       ${INSERT_EVENTS}
       SELECT run_id, 'approval.' || $2, step_idx, $3, jsonb_build_object('approvalId', $1::text, 'paramsHash', params_hash) FROM a`,
    [approvalId, resolved, JSON.stringify(actor)],
  );
}

/** The approvals `principal` decided, newest decision first (the console's "My approvals"). */
export async function selectDecidedBy(q: Queryable, principal: string, limit: number): Promise<ApprovalRow[]> {
  const { rows } = await q.query<ApprovalRow>(
    `SELECT a.*, r.workflow, r.status AS run_status
       FROM tollgate.approval_decisions d JOIN tollgate.approvals a ON a.id = d.approval_id JOIN tollgate.runs r ON r.id = a.run_id
      WHERE d.principal = $1 ORDER BY d.decided_at DESC, a.id LIMIT $2`,
    [principal, limit],
  );
  return rows;
}

/**
 * The newest event's id: every change of an approval (requested, decided, resolved, expired,
 * escalated, voided, cancelled) and of the run that holds it appends one, so a console list of
 * approvals needs redrawing only when this moved (src/console/decide-routes.ts). One index lookup.
 */
export async function newestEventId(q: Queryable): Promise<string> {
  const { rows } = await q.query<{ id: string | null }>('SELECT max(id)::text AS id FROM tollgate.events');
  return rows[0]?.id ?? '0';
}
