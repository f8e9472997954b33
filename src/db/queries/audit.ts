/**
 * The audit trail's reads (src/audit: `audit verify`, the evidence bundle, the key check) and the
 * keyed checkpoint: the chained events as they were linked, the chain heads
 * (`tollgate.event_chains`), the decisions next to the events that recorded them, and the key's
 * row (`tollgate.audit_key`).
 *
 * Nothing here is trusted to verify anything: these return the raw columns, and src/audit
 * recomputes every link in Node. Each read runs on the caller's connection, so a caller that wants
 * one snapshot (verify, export) opens a REPEATABLE READ transaction and passes its client.
 */
import type { ApprovalRow } from './approvals.ts';
import type { Queryable } from '../queryable.ts';

// ---------------------------------------------------------------------------------------------
// The walk of every chain (`audit verify`)

/** An event with its place in its chain and its link, as `audit verify` checks it. */
export interface ChainEventRow {
  id: string;
  run_id: string | null;
  /** The chain's key: the run's id, or '' for the global chain. */
  chain: string;
  seq: string | null;
  type: string;
  step_idx: number | null;
  actor: string | null;
  at_us: string;
  created_at: Date;
  prev_hash: Buffer | null;
  hash: Buffer | null;
  payload_digest: Buffer | null;
  payload: string | null;
}

/** The next `limit` events of every chain after (chain, seq) `after`, in chain order then seq. */
export async function readChainEventsAfter(q: Queryable, after: [string, number], limit: number): Promise<ChainEventRow[]> {
  const { rows } = await q.query<ChainEventRow>(
    `SELECT id::text, run_id, coalesce(run_id, '') AS chain, seq::text, type, step_idx, actor::text AS actor,
              ((extract(epoch FROM created_at) * 1000000)::bigint)::text AS at_us, created_at,
              prev_hash, hash, payload_digest, payload::text AS payload
       FROM tollgate.events
       WHERE (coalesce(run_id, ''), coalesce(seq, -1)) > ($1, $2)
       ORDER BY coalesce(run_id, ''), coalesce(seq, -1)
       LIMIT ${limit}`,
    after,
  );
  return rows;
}

/** The latest cutoff retention recorded (`retention.started`, `retention.purged`), if any. */
export async function readLatestRetentionCutoff(q: Queryable): Promise<Date | undefined> {
  const { rows } = await q.query<{ cutoff: Date | null }>(
    `SELECT max((payload->>'cutoff')::timestamptz) AS cutoff FROM tollgate.events
      WHERE run_id IS NULL AND type IN ('retention.started', 'retention.purged') AND payload ? 'cutoff'`,
  );
  return rows[0]?.cutoff ?? undefined;
}

export interface CheckpointEventRow {
  id: string;
  seq: string;
  created_at: Date;
  hash: Buffer | null;
  payload: { chains?: unknown } | null;
}

/** Every `audit.checkpoint` event of the global chain, oldest first. */
export async function readCheckpointEvents(q: Queryable): Promise<CheckpointEventRow[]> {
  const { rows } = await q.query<CheckpointEventRow>(
    `SELECT id::text, seq::text, created_at, hash, payload FROM tollgate.events
      WHERE run_id IS NULL AND type = 'audit.checkpoint' ORDER BY seq`,
  );
  return rows;
}

export interface ChainHeadRow {
  chain: string;
  seq: string;
  last_hash: Buffer | null;
  last_event_id: string | null;
}

/** Every chain's head row. */
export async function readChainHeads(q: Queryable): Promise<ChainHeadRow[]> {
  const { rows } = await q.query<ChainHeadRow>('SELECT chain, seq::text, last_hash, last_event_id::text FROM tollgate.event_chains ORDER BY chain');
  return rows;
}

export interface LinkedDecisionRow {
  approval_id: string;
  principal: string;
  decision: string;
  comment: string | null;
  via: string | null;
  on_behalf_of: string | null;
  event_id: string | null;
  at_us: string;
  run_id: string | null;
  step_idx: number | null;
}

/** Every decision, with the run and step of its approval, to compare with the events that recorded them. */
export async function readLinkedDecisions(q: Queryable): Promise<LinkedDecisionRow[]> {
  const { rows } = await q.query<LinkedDecisionRow>(
    `SELECT d.approval_id, d.principal, d.decision, d.comment, d.via, d.on_behalf_of, d.event_id::text,
            ((extract(epoch FROM d.decided_at) * 1000000)::bigint)::text AS at_us, a.run_id, a.step_idx
       FROM tollgate.approval_decisions d LEFT JOIN tollgate.approvals a ON a.id = d.approval_id
      ORDER BY d.approval_id, d.principal`,
  );
  return rows;
}

export interface AuditKeyRow {
  introduced_at: Date;
  relinked: string;
  legacy_broken_event: string | null;
}

/** When the audit key was introduced and what its migration re-linked (undefined: the row was removed). */
export async function readAuditKeyRow(q: Queryable): Promise<AuditKeyRow | undefined> {
  const { rows } = await q.query<AuditKeyRow>('SELECT introduced_at, relinked::text, legacy_broken_event::text FROM tollgate.audit_key');
  return rows[0];
}

/** The fingerprint of the key the chain is keyed with (undefined: the row was removed). */
export async function readAuditKeyFingerprint(q: Queryable): Promise<Buffer | undefined> {
  const { rows } = await q.query<{ fingerprint: Buffer }>('SELECT fingerprint FROM tollgate.audit_key');
  return rows[0]?.fingerprint;
}

/**
 * Appends a checkpoint of the chains changed since the last one (`tollgate.audit_checkpoint`,
 * migration 000011, SECURITY DEFINER); returns how many chains it named.
 */
export async function appendAuditCheckpoint(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ named: number }>('SELECT tollgate.audit_checkpoint() AS named');
  return Number(rows[0]?.named ?? 0);
}

// ---------------------------------------------------------------------------------------------
// One run's evidence (the evidence bundle)

/** An event exactly as it was linked, its time in epoch microseconds. */
export interface LinkedEventRow {
  id: string;
  seq: string | null;
  type: string;
  step_idx: number | null;
  actor: string | null;
  at_us: string;
  prev_hash: Buffer | null;
  hash: Buffer | null;
  payload_digest: Buffer | null;
  payload: string | null;
}

// seq is selected as text: ORDER BY must name the table's column (e.seq), not this text.
const EVENT_COLUMNS = `id::text, seq::text, type, step_idx, actor::text AS actor,
  ((extract(epoch FROM created_at) * 1000000)::bigint)::text AS at_us, prev_hash, hash, payload_digest, payload::text AS payload`;

/** The run's events in chain order (an event without a place last). */
export async function readRunChainEvents(q: Queryable, runId: string): Promise<LinkedEventRow[]> {
  const { rows } = await q.query<LinkedEventRow>(`SELECT ${EVENT_COLUMNS} FROM tollgate.events e WHERE run_id = $1 ORDER BY e.seq NULLS LAST, e.id`, [runId]);
  return rows;
}

export interface ChainHead {
  seq: string;
  last_hash: Buffer | null;
}

/** The head row of the run's chain. */
export async function readRunChainHead(q: Queryable, runId: string): Promise<ChainHead | undefined> {
  const { rows } = await q.query<ChainHead>('SELECT seq::text, last_hash FROM tollgate.event_chains WHERE chain = $1', [runId]);
  return rows[0];
}

/** The head row of the global chain. */
export async function readGlobalChainHead(q: Queryable): Promise<ChainHead | undefined> {
  const { rows } = await q.query<ChainHead>(`SELECT seq::text, last_hash FROM tollgate.event_chains WHERE chain = ''`);
  return rows[0];
}

/** The run's approvals, by step. */
export async function readRunApprovals(q: Queryable, runId: string): Promise<ApprovalRow[]> {
  const { rows } = await q.query<ApprovalRow>('SELECT * FROM tollgate.approvals WHERE run_id = $1 ORDER BY step_idx, created_at, id', [runId]);
  return rows;
}

export interface DecisionEvidenceRow {
  approval_id: string;
  principal: string;
  decision: string;
  comment: string | null;
  via: string | null;
  os_user: string | null;
  at_us: string;
  event_id: string | null;
}

/** The decisions on these approvals, in the order they were taken. */
export async function readDecisionsOf(q: Queryable, approvalIds: string[]): Promise<DecisionEvidenceRow[]> {
  const { rows } = await q.query<DecisionEvidenceRow>(
    `SELECT approval_id, principal, decision, comment, via, os_user, event_id::text,
            ((extract(epoch FROM decided_at) * 1000000)::bigint)::text AS at_us
       FROM tollgate.approval_decisions WHERE approval_id = ANY($1) ORDER BY decided_at, principal`,
    [approvalIds],
  );
  return rows;
}

/** The newest checkpoint of the global chain that names this run. */
export async function readNewestCheckpointNaming(q: Queryable, runId: string): Promise<LinkedEventRow | undefined> {
  const { rows } = await q.query<LinkedEventRow>(
    `SELECT ${EVENT_COLUMNS} FROM tollgate.events e
      WHERE run_id IS NULL AND type = 'audit.checkpoint' AND payload->'chains' @> jsonb_build_array(jsonb_build_array($1::text))
      ORDER BY e.seq DESC LIMIT 1`,
    [runId],
  );
  return rows[0];
}

/** The retention record with the latest cutoff (what `audit verify` takes as the purge's bound). */
export async function readLatestRetentionRecord(q: Queryable): Promise<(LinkedEventRow & { cutoff: Date }) | undefined> {
  const { rows } = await q.query<LinkedEventRow & { cutoff: Date }>(
    `SELECT ${EVENT_COLUMNS}, (payload->>'cutoff')::timestamptz AS cutoff FROM tollgate.events
      WHERE run_id IS NULL AND type IN ('retention.started', 'retention.purged') AND payload ? 'cutoff'
      ORDER BY (payload->>'cutoff')::timestamptz DESC LIMIT 1`,
  );
  return rows[0];
}
