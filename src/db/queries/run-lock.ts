/**
 * The advisory lock that makes an advance the only one of its run (invariant 2): session-level,
 * on the connection the advance keeps and writes every journal row through, so if that connection
 * goes, the lock goes with it (see src/runtime/executor.ts). An advance first tries it in the
 * statement that claims the run (src/db/queries/runs.ts `claimRun`, `tryLock`, same key); these
 * wait for it when that finds it taken, and let it go.
 */
import type { Queryable } from '../queryable.ts';

/**
 * Waits up to `waitMs` for the run's lock; false when the wait ran out (lock_timeout, 55P03). The
 * session's lock_timeout is reset afterwards, whatever happened.
 */
export async function lockRunWithin(q: Queryable, runId: string, waitMs: number): Promise<boolean> {
  try {
    await q.query(`SET lock_timeout = ${Math.floor(waitMs)}`);
    await q.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [runId]);
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === '55P03') return false;
    throw e;
  } finally {
    await q.query('RESET lock_timeout');
  }
}

export async function unlockRun(q: Queryable, runId: string): Promise<void> {
  await q.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [runId]);
}
