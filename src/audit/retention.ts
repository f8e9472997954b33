/**
 * Retention: removes the personal data of runs that finished before the cutoff, and of what
 * belongs to no run and is older than it. Every copy is listed in PURGED_COLUMNS (the README's
 * "Retention" section says why each column is purged or kept).
 *
 * Live runs are never touched, whatever their age: their replay needs the recorded outputs and
 * their approvals are still being decided. A finished run is locked while it is purged, so a
 * concurrent `runs retry` either happens first (the run is live again and skipped) or finds it
 * purged and refuses.
 *
 * The audit chain stays verifiable: each event's hash covers its payload's digest (kept), not the
 * payload, and the append-only trigger allows exactly this update (payload to NULL, nothing else).
 * Before anything is removed a `retention.purged` event with the cutoff is chained: it is what
 * entitles a payload older than the cutoff to be missing (`audit verify` checks that). Counts go
 * in a `retention.completed` event at the end.
 *
 * Work is done in batches of runs, each its own short transaction, so the purge never holds locks
 * for long, and the tables are vacuumed (plain VACUUM, never FULL) after each stretch of purging so the space of
 * the old row versions is reused by the next batches instead of growing the table
 * (see README "Retention" for the measurements).
 */
import type pg from 'pg';
import { TERMINAL_STATUSES } from '../db/queries/runs.ts';
import { appendEvent } from '../db/queries/events.ts';
import { withTransaction } from '../db/transaction.ts';

/** What the purge empties, by table: the README lists these and what is kept. */
export const PURGED_COLUMNS = {
  runs: ['input', 'output', 'error (reduced to name and code)', 'requester.name', 'cancel_requested_by.name'],
  steps: ['input', 'output', 'error (reduced to name and code)'],
  approvals: ['summary', 'params', 'rationale', 'tool_input', 'requester.name'],
  approval_decisions: ['comment'],
  chat_messages: ['body (run and approval copies)', 'reply rows (deleted)'],
  events: ['payload (except the purge records retention.purged and retention.completed, and audit.checkpoint, which hold no personal data and which audit verify needs)'],
  teams_users: ['name (users not seen since the cutoff)'],
  chat_proposals: ['rows older than the cutoff (deleted)'],
} as const;

export interface PurgeResult {
  cutoff: string;
  runs: number;
  steps: number;
  events: number;
  approvals: number;
  decisions: number;
  chatMessages: number;
  replies: number;
  teamsUsers: number;
  proposals: number;
}

export interface PurgeOptions {
  /** Runs per transaction. */
  batchRuns?: number;
  /** Global events (no run) and replies per statement. */
  batchRows?: number;
  /**
   * Plain VACUUM of the purged tables once this many event payloads were emptied since the last
   * one, and at the end (0: never). Default: 5% of the events table, at least 100,000.
   */
  vacuumAfterEvents?: number;
}

const PURGED_TEXT = 'purged by retention';
// Written out, not a parameter: the planner matches the partial index runs_unpurged_finished_idx
// (migration 000014) only against the same constant list.
const FINISHED = `status IN (${TERMINAL_STATUSES.map((s) => `'${s}'`).join(', ')})`;

/** An error as kept after the purge: what kind of failure, without the message (which may quote data). */
const reducedError = (col: string) =>
  `CASE WHEN ${col} IS NULL THEN NULL ELSE jsonb_strip_nulls(jsonb_build_object('name', ${col}->'name', 'code', ${col}->'code', 'message', '${PURGED_TEXT}')) END`;

/**
 * Every statement of the purge, each reading through an index (test/retention.test.ts checks
 * their plans). $1 is the cutoff (or the batch's ids), $2 the batch size (or the cutoff).
 */
/** A principal without its display name (the ids stay: they say who acted). */
const withoutName = (col: string) => `CASE WHEN jsonb_typeof(${col}) = 'object' THEN ${col} - 'name' ELSE ${col} END`;

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

export async function purgeBefore(pool: pg.Pool, cutoff: Date, opts: PurgeOptions = {}): Promise<PurgeResult> {
  const batchRuns = opts.batchRuns ?? 500;
  const batchRows = opts.batchRows ?? 5000;
  const vacuumAfter = opts.vacuumAfterEvents ?? (await defaultVacuumAfter(pool));
  const result: PurgeResult = {
    cutoff: cutoff.toISOString(),
    runs: 0,
    steps: 0,
    events: 0,
    approvals: 0,
    decisions: 0,
    chatMessages: 0,
    replies: 0,
    teamsUsers: 0,
    proposals: 0,
  };
  // First, in its own transaction: the record that entitles payloads older than the cutoff to be
  // missing. An interrupted purge leaves only what this event already allows.
  await appendEvent(pool, { runId: null, type: 'retention.purged', payload: { cutoff: result.cutoff } });

  let vacuumedAt = 0;
  for (;;) {
    const n = await withTransaction(pool, (q) => purgeRunBatch(q, cutoff, batchRuns, result));
    if (vacuumAfter > 0 && result.events - vacuumedAt >= vacuumAfter) {
      await vacuum(pool, ['tollgate.events', 'tollgate.steps', 'tollgate.runs']);
      vacuumedAt = result.events;
    }
    if (n < batchRuns) break;
  }

  // Events of the global chain (no run): by age. Keyset on created_at through the partial index.
  for (;;) {
    const r = await pool.query(PURGE_SQL.globalEvents, [cutoff, batchRows]);
    result.events += r.rowCount ?? 0;
    if ((r.rowCount ?? 0) < batchRows) break;
  }

  // Fixed replies (help, status, lists of runs) belong to no run; once older than the cutoff they
  // were delivered or abandoned long ago, and nothing reads them again.
  for (;;) {
    const r = await pool.query(PURGE_SQL.replies, [cutoff, batchRows]);
    result.replies += r.rowCount ?? 0;
    if ((r.rowCount ?? 0) < batchRows) break;
  }

  // Display names in the Teams directory of users not seen since the cutoff (refilled by their
  // next activity; the ids that reach them stay). One row per user: small.
  const t = await pool.query(PURGE_SQL.teamsNames, [cutoff]);
  result.teamsUsers = t.rowCount ?? 0;

  for (;;) {
    const r = await pool.query(PURGE_SQL.proposals, [cutoff, batchRows]);
    result.proposals += r.rowCount ?? 0;
    if ((r.rowCount ?? 0) < batchRows) break;
  }

  if (vacuumAfter > 0 && result.runs + result.events > 0) {
    await vacuum(pool, ['tollgate.events', 'tollgate.steps', 'tollgate.runs', 'tollgate.approvals']);
  }
  await appendEvent(pool, { runId: null, type: 'retention.completed', payload: { ...result } });
  return result;
}

/**
 * One batch: locks up to `limit` finished, unpurged runs older than the cutoff (oldest first,
 * skipping runs locked by someone else: they are taken next time), then empties every copy of
 * their personal data. Returns how many runs it purged.
 */
async function purgeRunBatch(q: pg.PoolClient, cutoff: Date, limit: number, result: PurgeResult): Promise<number> {
  const runs = await q.query<{ id: string }>(PURGE_SQL.runs, [cutoff, limit]);
  if (runs.rowCount === 0) return 0;
  const ids = runs.rows.map((r) => r.id);
  result.runs += ids.length;
  result.steps += (await q.query(PURGE_SQL.steps, [ids])).rowCount ?? 0;
  const approvals = await q.query<{ id: string }>(PURGE_SQL.approvals, [ids]);
  result.approvals += approvals.rowCount ?? 0;
  if (approvals.rowCount) result.decisions += (await q.query(PURGE_SQL.decisions, [approvals.rows.map((a) => a.id)])).rowCount ?? 0;
  result.chatMessages += (await q.query(PURGE_SQL.runMessages, [ids])).rowCount ?? 0;
  result.events += (await q.query(PURGE_SQL.runEvents, [ids, cutoff])).rowCount ?? 0;
  return ids.length;
}

/**
 * Often enough that the row versions of one stretch of purging are reclaimed before the next
 * stretch writes its own (a VACUUM also reads every index of the table, so not after every batch).
 */
async function defaultVacuumAfter(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(`SELECT greatest(reltuples, 0)::float8 AS n FROM pg_class WHERE oid = 'tollgate.events'::regclass`);
  return Math.max(100_000, Math.round(0.05 * (rows[0]?.n ?? 0)));
}

/**
 * Plain VACUUM (not FULL: it takes no exclusive lock and never rewrites the table): marks the
 * space of the row versions the purge replaced as free, so the next batches and new runs reuse
 * it. A role that does not own a table only gets a warning from PostgreSQL, and autovacuum does it.
 */
async function vacuum(pool: pg.Pool, tables: string[]): Promise<void> {
  for (const t of tables) await pool.query(`VACUUM (ANALYZE) ${t}`);
}

/** Purges what is older than `days` days (the project configuration's `retention.days`). */
export function purgeOlderThan(pool: pg.Pool, days: number, now: Date = new Date(), opts?: PurgeOptions): Promise<PurgeResult> {
  return purgeBefore(pool, new Date(now.getTime() - days * 86_400_000), opts);
}
