/**
 * The reads behind the views (src/views) and the lists people ask for: a person's runs, the web
 * console's filtered pages of runs, a run's events for its timeline, and what tells a timeline it
 * must be drawn again. Reading one run by id is `readRun`, its steps `loadSteps` (runs.ts).
 */
import type { Principal } from '../../common/principals.ts';
import type { Queryable } from '../queryable.ts';
import type { EventRow, RunRow, RunStatus } from './runs.ts';

/** A person's most recent runs (they asked for them), newest first. */
export async function listRunsRequestedBy(q: Queryable, who: Pick<Principal, 'platform' | 'tenant' | 'user'>, limit = 10): Promise<RunRow[]> {
  const { rows } = await q.query<RunRow>(`SELECT * FROM tollgate.runs WHERE requester @> $1::jsonb ORDER BY created_at DESC, id DESC LIMIT $2`, [
    JSON.stringify({ platform: who.platform, tenant: who.tenant, user: who.user }),
    limit,
  ]);
  return rows;
}

/**
 * Runs newest first, narrowed by whichever of workflow, status and requester are given (the web
 * console's list). `before` pages: only runs older than that run (by creation, then id), so a
 * page stays put while new runs arrive; through `runs_created_at_idx`.
 */
export async function listRunsFiltered(
  q: Queryable,
  filter: { workflow?: string; status?: RunStatus; requester?: Pick<Principal, 'platform' | 'tenant' | 'user'>; before?: string; limit?: number },
): Promise<RunRow[]> {
  const who = filter.requester ? JSON.stringify({ platform: filter.requester.platform, tenant: filter.requester.tenant, user: filter.requester.user }) : null;
  const { rows } = await q.query<RunRow>(
    `SELECT * FROM tollgate.runs WHERE ($1::text IS NULL OR workflow = $1) AND ($2::text IS NULL OR status = $2)
       AND ($3::jsonb IS NULL OR requester @> $3::jsonb)
       AND ($5::text IS NULL OR (created_at, id) < (SELECT created_at, id FROM tollgate.runs WHERE id = $5))
     ORDER BY created_at DESC, id DESC LIMIT $4`,
    [filter.workflow ?? null, filter.status ?? null, who, filter.limit ?? 100, filter.before ?? null],
  );
  return rows;
}

/** A run's events, oldest first. */
export async function listRunEvents(q: Queryable, runId: string): Promise<EventRow[]> {
  const events = await q.query<EventRow>('SELECT id, run_id, type, step_idx, actor, payload, created_at FROM tollgate.events WHERE run_id = $1 ORDER BY id', [
    runId,
  ]);
  return events.rows;
}

/**
 * The run's `updated_at` and newest event id (one index lookup, `events_run_idx`): every change
 * of a run appends an event (invariant 1), so together they change whenever its timeline does.
 */
export async function readRunChangeMarks(q: Queryable, runId: string): Promise<{ updated_at: Date; last_event: string | null } | undefined> {
  const { rows } = await q.query<{ updated_at: Date; last_event: string | null }>(
    `SELECT r.updated_at, (SELECT max(e.id) FROM tollgate.events e WHERE e.run_id = r.id) AS last_event FROM tollgate.runs r WHERE r.id = $1`,
    [runId],
  );
  return rows[0];
}

// ----- revisions (stale buttons) -----------------------------------------------------------------

/**
 * A run's revision: the sequence number of its newest event in its audit chain (0 before any).
 * Every change of a run appends an event in its own transaction (invariant 1), and the chain
 * numbers a run's events in commit order (the chain's row is locked until the appending
 * transaction ends), so a copy drawn at revision r shows every change up to r, and the events
 * numbered after r are exactly what happened since. One primary-key read.
 */
export async function readRunRevision(q: Queryable, runId: string): Promise<number> {
  const { rows } = await q.query<{ seq: string }>('SELECT seq FROM tollgate.event_chains WHERE chain = $1', [runId]);
  return rows[0] ? Number(rows[0].seq) : 0;
}

/** The revision of the run an approval belongs to (0 for an unknown approval). */
export async function readApprovalRunRevision(q: Queryable, approvalId: string): Promise<number> {
  const { rows } = await q.query<{ seq: string }>('SELECT c.seq FROM tollgate.approvals a JOIN tollgate.event_chains c ON c.chain = a.run_id WHERE a.id = $1', [
    approvalId,
  ]);
  return rows[0] ? Number(rows[0].seq) : 0;
}

/** An event as the stale-button check reads it: its place in the run's chain and what it says. */
export interface RevisionEventRow {
  seq: number;
  type: string;
  step_idx: number | null;
  actor: unknown;
  payload: Record<string, unknown>;
  created_at: Date;
}

/** A run's events after revision `after`, oldest first, at most `limit` (through `events_chain_seq_idx`). */
export async function listEventsSince(q: Queryable, runId: string, after: number, limit = 500): Promise<RevisionEventRow[]> {
  const { rows } = await q.query<Omit<RevisionEventRow, 'seq'> & { seq: string }>(
    `SELECT seq, type, step_idx, actor, payload, created_at FROM tollgate.events
      WHERE coalesce(run_id, '') = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
    [runId, after, limit],
  );
  return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}
