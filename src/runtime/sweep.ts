/**
 * The safety net under "nothing is lost": finds runs that should be moving but have no advance
 * job that can still run (a job that used up its attempts while the database was down for days, a
 * wake-up lost some other way) and enqueues one. Runs every minute from the worker's crontab;
 * cheap when there is nothing to do (it looks at live runs only, through the status index).
 *
 * It never decides anything about a run: an extra advance is harmless (the executor serialises
 * and re-reads the journal), so erring towards enqueueing is safe. Re-enqueueing a run left
 * `running` is not counted as a recovery here: the advance it enqueues counts it when it claims
 * the run (journal.claimRun), once. Dead-lettered runs ('dead_letter') are not in the statuses
 * below on purpose: they wait for a person (`tollgate runs retry`), not for a sweep.
 */
import type pg from 'pg';
import { withTransaction } from '../db/transaction.ts';
import { ADVANCE_TASK, enqueueAdvance } from '../db/queries/runs.ts';
import { appendEvent } from '../db/queries/events.ts';

/** A run untouched this long with no job is stuck; a timer this far past is overdue. */
export const STUCK_AFTER = '2 minutes';

export async function sweepStuckRuns(pool: pg.Pool): Promise<string[]> {
  return withTransaction(pool, async (q) => {
    const { rows } = await q.query<{ id: string }>(
      `SELECT r.id FROM tollgate.runs r
       WHERE ((r.status IN ('queued', 'running', 'compensating') AND r.updated_at < now() - $1::interval)
           OR (r.status = 'waiting' AND r.wake_at IS NOT NULL AND r.wake_at < now() - $1::interval))
         AND NOT EXISTS (
           -- Graphile Worker 0.17's own tables: its public jobs view does not show payloads.
           SELECT 1 FROM graphile_worker._private_jobs j
           JOIN graphile_worker._private_tasks t ON t.id = j.task_id
           WHERE t.identifier = $2 AND j.payload->>'runId' = r.id AND j.attempts < j.max_attempts)
       ORDER BY r.updated_at
       LIMIT 500
       FOR UPDATE OF r SKIP LOCKED`,
      [STUCK_AFTER, ADVANCE_TASK],
    );
    for (const { id } of rows) {
      await appendEvent(q, { runId: id, type: 'run.swept', payload: { reason: 'no advance job could run; enqueued one' } });
      await enqueueAdvance(q, id);
    }
    return rows.map((r) => r.id);
  });
}
