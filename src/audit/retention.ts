/**
 * Retention: drops step inputs/outputs of runs that finished before the cutoff, and event
 * payloads older than it. The event log stays verifiable because each event's hash covers its
 * payload's digest (kept), not the payload; the append-only trigger allows exactly this update
 * (payload to NULL, nothing else changed). The purge is itself recorded as an event.
 *
 * Runs that are still live are never touched: their replay needs the recorded outputs. A finished
 * run whose journal was purged is marked, and `runs retry` refuses it.
 */
import type pg from 'pg';
import { appendEvent } from '../runtime/journal.ts';

export interface PurgeResult {
  cutoff: string;
  events: number;
  steps: number;
  runs: number;
}

const BATCH = 5000;

export async function purgeBefore(pool: pg.Pool, cutoff: Date): Promise<PurgeResult> {
  // Recorded first: `audit verify` accepts a NULL payload only on an event older than a cutoff
  // on record, and a verify running while this purge is half done must not take it for tampering.
  await appendEvent(pool, { runId: null, type: 'retention.started', payload: { cutoff: cutoff.toISOString() } });
  let events = 0;
  // Keyset batches (id > the last one purged): each batch starts where the previous ended instead
  // of walking again over the rows already purged.
  let last = '0';
  for (;;) {
    const r = await pool.query<{ id: string }>(
      `UPDATE tollgate.events SET payload = NULL
       WHERE id IN (SELECT id FROM tollgate.events WHERE id > $2 AND created_at < $1 AND payload IS NOT NULL
                      -- no personal data in these, and audit verify needs what they say
                      AND type NOT IN ('audit.checkpoint', 'retention.started', 'retention.purged') ORDER BY id LIMIT ${BATCH})
       RETURNING id::text`,
      [cutoff, last],
    );
    events += r.rowCount ?? 0;
    if ((r.rowCount ?? 0) < BATCH) break;
    last = r.rows.reduce((max, row) => (BigInt(row.id) > BigInt(max) ? row.id : max), last);
  }
  const runs = await pool.query<{ id: string }>(
    `UPDATE tollgate.runs SET journal_purged_at = now()
     WHERE finished_at IS NOT NULL AND finished_at < $1 AND journal_purged_at IS NULL
       AND status IN ('succeeded', 'failed', 'cancelled', 'compensated', 'compensation_failed')
     RETURNING id`,
    [cutoff],
  );
  // Only the runs purged now: earlier ones were emptied by earlier purges.
  const steps = await pool.query(
    `UPDATE tollgate.steps SET input = NULL, output = NULL
     WHERE run_id = ANY($1::text[]) AND (input IS NOT NULL OR output IS NOT NULL)`,
    [runs.rows.map((r) => r.id)],
  );
  const result = { cutoff: cutoff.toISOString(), events, steps: steps.rowCount ?? 0, runs: runs.rowCount ?? 0 };
  await appendEvent(pool, { runId: null, type: 'retention.purged', payload: { ...result } });
  return result;
}

/** Purges what is older than `days` days (the project configuration's `retention.days`). */
export function purgeOlderThan(pool: pg.Pool, days: number, now: Date = new Date()): Promise<PurgeResult> {
  return purgeBefore(pool, new Date(now.getTime() - days * 86_400_000));
}
