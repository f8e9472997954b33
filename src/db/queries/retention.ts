/**
 * Retention's statements (src/audit/retention.ts decides when and in what order): each empties
 * the personal data of one table, of a batch of finished runs or of what belongs to no run and is
 * older than the cutoff. Every statement reads through an index (test/retention.test.ts checks
 * their plans), and each returns how many rows it changed.
 */
import type { Queryable } from '../queryable.ts';
import { TERMINAL_STATUSES } from './runs.ts';

const PURGED_TEXT = 'purged by retention';
// Written out, not a parameter: the planner matches the partial index runs_unpurged_finished_idx
// (migration 000014) only against the same constant list.
const FINISHED = `status IN (${TERMINAL_STATUSES.map((s) => `'${s}'`).join(', ')})`;

/** An error as kept after the purge: what kind of failure, without the message (which may quote data). */
const reducedError = (col: string) =>
  `CASE WHEN ${col} IS NULL THEN NULL ELSE jsonb_strip_nulls(jsonb_build_object('name', ${col}->'name', 'code', ${col}->'code', 'message', '${PURGED_TEXT}')) END`;

/** A principal without its display name (the ids stay: they say who acted). */
const withoutName = (col: string) => `CASE WHEN jsonb_typeof(${col}) = 'object' THEN ${col} - 'name' ELSE ${col} END`;

/**
 * Every statement of the purge, each reading through an index (test/retention.test.ts checks
 * their plans). $1 is the cutoff (or the batch's ids), $2 the batch size (or the cutoff).
 */
export const PURGE_SQL = {
  /** Locks a batch of finished, unpurged runs, oldest first (runs locked by someone else are taken next time), and empties them. */
  runs: `WITH batch AS (
       SELECT id FROM tollgate.runs
       WHERE journal_purged_at IS NULL AND ${FINISHED} AND finished_at < $1
       ORDER BY finished_at LIMIT $2
       FOR UPDATE SKIP LOCKED)
     UPDATE tollgate.runs r SET journal_purged_at = now(), input = '{}'::jsonb, output = NULL, error = ${reducedError('r.error')},
       requester = ${withoutName('r.requester')}, cancel_requested_by = ${withoutName('r.cancel_requested_by')}
     FROM batch WHERE r.id = batch.id
     RETURNING r.id`,
  steps: `UPDATE tollgate.steps SET input = NULL, output = NULL, error = ${reducedError('error')}
     WHERE run_id = ANY($1::text[]) AND (input IS NOT NULL OR output IS NOT NULL OR error IS NOT NULL)`,
  // NOT NULL columns get a marker instead of NULL: views of old runs still render.
  approvals: `UPDATE tollgate.approvals SET summary = '(${PURGED_TEXT})', params = '{}'::jsonb, rationale = NULL, tool_input = NULL,
       requester = ${withoutName('requester')}
     WHERE run_id = ANY($1::text[])
     RETURNING id`,
  decisions: `UPDATE tollgate.approval_decisions SET comment = NULL WHERE approval_id = ANY($1::text[]) AND comment IS NOT NULL`,
  runMessages: `UPDATE tollgate.chat_messages SET body = NULL WHERE run_id = ANY($1::text[]) AND body IS NOT NULL`,
  // Only events older than the cutoff: the `retention.purged` event chained first covers exactly those.
  runEvents: `UPDATE tollgate.events SET payload = NULL WHERE run_id = ANY($1::text[]) AND created_at < $2 AND payload IS NOT NULL`,
  /** Events of the global chain (no run), by age, through events_global_unpurged_idx. */
  globalEvents: `UPDATE tollgate.events SET payload = NULL
     WHERE id IN (SELECT id FROM tollgate.events
                  WHERE run_id IS NULL AND payload IS NOT NULL AND type NOT IN ('retention.purged', 'retention.completed', 'audit.checkpoint') AND created_at < $1
                  ORDER BY created_at LIMIT $2)`,
  /** Fixed replies (help, status, lists of runs) belong to no run and are deleted by age. */
  replies: `DELETE FROM tollgate.chat_messages
     WHERE id IN (SELECT id FROM tollgate.chat_messages WHERE kind = 'reply' AND created_at < $1 ORDER BY created_at LIMIT $2)`,
  /** Teams display names of users not seen since the cutoff (one row per user: a small table, read whole). */
  teamsNames: `UPDATE tollgate.teams_users SET name = NULL WHERE name IS NOT NULL AND updated_at < $1`,
  /**
   * What free-text requests were understood to mean (src/chat/proposals.ts), by age: a confirmed
   * one's values live on in its run (purged with it), an unconfirmed one this old is abandoned.
   */
  proposals: `DELETE FROM tollgate.chat_proposals
     WHERE id IN (SELECT id FROM tollgate.chat_proposals WHERE created_at < $1 ORDER BY created_at LIMIT $2)`,
} as const;

async function changed(q: Queryable, sql: string, params: unknown[]): Promise<number> {
  return (await q.query(sql, params)).rowCount ?? 0;
}

/**
 * Locks up to `limit` finished, unpurged runs that finished before the cutoff (oldest first,
 * skipping runs locked by someone else) and empties them; returns their ids. The lock lasts until
 * the caller's transaction ends: purge the rest of their data in it.
 */
export async function purgeRuns(q: Queryable, cutoff: Date, limit: number): Promise<string[]> {
  const { rows } = await q.query<{ id: string }>(PURGE_SQL.runs, [cutoff, limit]);
  return rows.map((r) => r.id);
}

export function purgeSteps(q: Queryable, runIds: string[]): Promise<number> {
  return changed(q, PURGE_SQL.steps, [runIds]);
}

/** Empties the runs' approvals; returns their ids (their decisions are next). */
export async function purgeApprovals(q: Queryable, runIds: string[]): Promise<string[]> {
  const { rows } = await q.query<{ id: string }>(PURGE_SQL.approvals, [runIds]);
  return rows.map((a) => a.id);
}

export function purgeDecisions(q: Queryable, approvalIds: string[]): Promise<number> {
  return changed(q, PURGE_SQL.decisions, [approvalIds]);
}

export function purgeRunMessages(q: Queryable, runIds: string[]): Promise<number> {
  return changed(q, PURGE_SQL.runMessages, [runIds]);
}

export function purgeRunEvents(q: Queryable, runIds: string[], cutoff: Date): Promise<number> {
  return changed(q, PURGE_SQL.runEvents, [runIds, cutoff]);
}

/** One batch (at most `limit`) of the global chain's payloads older than the cutoff. */
export function purgeGlobalEvents(q: Queryable, cutoff: Date, limit: number): Promise<number> {
  return changed(q, PURGE_SQL.globalEvents, [cutoff, limit]);
}

/** One batch (at most `limit`) of fixed replies older than the cutoff. */
export function deleteReplies(q: Queryable, cutoff: Date, limit: number): Promise<number> {
  return changed(q, PURGE_SQL.replies, [cutoff, limit]);
}

export function purgeTeamsNames(q: Queryable, cutoff: Date): Promise<number> {
  return changed(q, PURGE_SQL.teamsNames, [cutoff]);
}

/** One batch (at most `limit`) of chat proposals older than the cutoff. */
export function deleteProposals(q: Queryable, cutoff: Date, limit: number): Promise<number> {
  return changed(q, PURGE_SQL.proposals, [cutoff, limit]);
}

/** The planner's estimate of the events table's rows (free: no scan). */
export async function estimatedEventRows(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ n: number }>(`SELECT greatest(reltuples, 0)::float8 AS n FROM pg_class WHERE oid = 'tollgate.events'::regclass`);
  return rows[0]?.n ?? 0;
}

/** The tables the purge rewrites, and so vacuums. */
export type PurgedTable = 'tollgate.events' | 'tollgate.steps' | 'tollgate.runs' | 'tollgate.approvals';

/**
 * Plain VACUUM (not FULL: it takes no exclusive lock and never rewrites the table): marks the
 * space of the row versions the purge replaced as free, so the next batches and new runs reuse
 * it. A role that does not own a table only gets a warning from PostgreSQL, and autovacuum does it.
 * Not in a transaction: pass a pool.
 */
export async function vacuum(q: Queryable, tables: PurgedTable[]): Promise<void> {
  for (const t of tables) await q.query(`VACUUM (ANALYZE) ${t}`);
}
