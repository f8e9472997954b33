/**
 * Retention: removes the personal data of runs that finished before the cutoff, and of what
 * belongs to no run and is older than it. Every copy is listed in PURGED_COLUMNS (docs/operations.md#retention
 * says why each column is purged or kept). The statements are in
 * src/db/queries/retention.ts; this module decides their order and batches.
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
 * (see docs/operations.md#retention for the measurements).
 */
import type pg from 'pg';
import { appendEvent } from '../db/queries/events.ts';
import {
  deleteProposals,
  deleteReplies,
  estimatedEventRows,
  purgeApprovals,
  purgeDecisions,
  purgeGlobalEvents,
  purgeRunEvents,
  purgeRunMessages,
  purgeRuns,
  purgeSteps,
  purgeTeamsNames,
  vacuum,
} from '../db/queries/retention.ts';
import type { Queryable } from '../db/queryable.ts';
import { withTransaction } from '../db/transaction.ts';

/** What the purge empties, by table: docs/operations.md#retention lists these and what is kept. */
export const PURGED_COLUMNS = {
  runs: ['input', 'output', 'error (reduced to name and code)', 'requester.name', 'cancel_requested_by.name'],
  steps: ['input', 'output', 'error (reduced to name and code)'],
  approvals: ['summary', 'params', 'rationale', 'tool_input', 'requester.name'],
  approval_decisions: ['comment'],
  chat_messages: ['body (run and approval copies)', 'reply rows (deleted)'],
  events: [
    'payload (except the purge records retention.purged and retention.completed, and audit.checkpoint, which hold no personal data and which audit verify needs)',
  ],
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
  result.events += await inBatches(batchRows, () => purgeGlobalEvents(pool, cutoff, batchRows));

  // Fixed replies (help, status, lists of runs) belong to no run; once older than the cutoff they
  // were delivered or abandoned long ago, and nothing reads them again.
  result.replies += await inBatches(batchRows, () => deleteReplies(pool, cutoff, batchRows));

  // Display names in the Teams directory of users not seen since the cutoff (refilled by their
  // next activity; the ids that reach them stay). One row per user: small.
  result.teamsUsers = await purgeTeamsNames(pool, cutoff);

  result.proposals += await inBatches(batchRows, () => deleteProposals(pool, cutoff, batchRows));

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
async function purgeRunBatch(q: Queryable, cutoff: Date, limit: number, result: PurgeResult): Promise<number> {
  const ids = await purgeRuns(q, cutoff, limit);
  if (ids.length === 0) return 0;
  result.runs += ids.length;
  result.steps += await purgeSteps(q, ids);
  const approvals = await purgeApprovals(q, ids);
  result.approvals += approvals.length;
  if (approvals.length) result.decisions += await purgeDecisions(q, approvals);
  result.chatMessages += await purgeRunMessages(q, ids);
  result.events += await purgeRunEvents(q, ids, cutoff);
  return ids.length;
}

/** Runs `batch` (which purges at most `batchRows` rows) until one comes back short; returns the rows purged. */
async function inBatches(batchRows: number, batch: () => Promise<number>): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await batch();
    total += n;
    if (n < batchRows) return total;
  }
}

/**
 * Often enough that the row versions of one stretch of purging are reclaimed before the next
 * stretch writes its own (a VACUUM also reads every index of the table, so not after every batch).
 */
async function defaultVacuumAfter(pool: pg.Pool): Promise<number> {
  return Math.max(100_000, Math.round(0.05 * (await estimatedEventRows(pool))));
}

/** Purges what is older than `days` days (the project configuration's `retention.days`). */
export function purgeOlderThan(pool: pg.Pool, days: number, now: Date = new Date(), opts?: PurgeOptions): Promise<PurgeResult> {
  return purgeBefore(pool, new Date(now.getTime() - days * 86_400_000), opts);
}
