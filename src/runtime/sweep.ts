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
import { lockStuckRuns } from '../db/queries/runs.ts';
import { enqueueAdvance } from '../db/queries/jobs.ts';
import { appendEvent } from '../db/queries/events.ts';

/** A run untouched this long with no job is stuck; a timer this far past is overdue. */
export const STUCK_AFTER = '2 minutes';

export async function sweepStuckRuns(pool: pg.Pool): Promise<string[]> {
  return withTransaction(pool, async (q) => {
    const ids = await lockStuckRuns(q, STUCK_AFTER);
    for (const id of ids) {
      await appendEvent(q, { runId: id, type: 'run.swept', payload: { reason: 'no advance job could run; enqueued one' } });
      await enqueueAdvance(q, id);
    }
    return ids;
  });
}
