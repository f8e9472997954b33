/**
 * One hop from a click to the run's next step. The `chat-intent` job that records a decision
 * (that resolved its gate), a Retry or a Cancel has, in that same transaction, enqueued the run's
 * advance job and locked it under this worker's lock id (src/chat/intake/carry-out.ts,
 * src/db/queries/advance-hold.ts). Right after the commit, in the same worker turn, it advances
 * the run itself, without waiting for a worker to fetch the advance job:
 * - the run's lock is only tried, never waited for: a run another executor holds is left to the
 *   held job, unlocked for any worker, which then waits for the lock as an advance job does;
 * - once the advance ran here, the held job is deleted (a wake-up that came meanwhile is a job of
 *   its own, so nothing is lost); when it did not run, or failed, the job is unlocked instead, and
 *   a worker runs it (and retries it with Graphile Worker's backoff, as before);
 * - a crash between the commit and the advance leaves the job locked by a dead worker: the
 *   heartbeat's reaper unlocks it (src/worker/worker.ts), and the run advances from there, once.
 *
 * The inline advance never fails the click's job: the click is carried out once its transaction
 * committed, and a retried `chat-intent` job would only tell the clicker "already recorded".
 */
import type { Logger } from '../common/log.ts';
import { retryWithBackoff, type Backoff } from '../common/backoff.ts';
import { dropHeldAdvance, releaseHeldAdvance, type HeldAdvance } from '../db/queries/advance-hold.ts';
import type { AdvanceOutcome } from '../runtime/executor.ts';
import type { Runtime } from '../runtime/runtime.ts';

/** Waits between attempts to hand back or drop the held job while the database does not answer. */
const SETTLE_BACKOFF: Backoff = { firstMs: 100, maxMs: 5000 };

/**
 * Advances `held.runId` here and settles its held advance job. Resolves with the advance's outcome
 * ('busy' when another executor held the run), or undefined when the advance threw (logged).
 */
export async function advanceHeld(
  runtime: Runtime,
  held: HeldAdvance,
  executorId: string,
  signal: AbortSignal,
  log: Logger,
): Promise<AdvanceOutcome | undefined> {
  let outcome: AdvanceOutcome | undefined;
  try {
    outcome = await runtime.advance(held.runId, executorId, signal, { waitForLock: false });
  } catch (e) {
    log.warn({ err: e, runId: held.runId }, 'the inline advance after a click failed; its advance job takes over');
  }
  const ran = outcome !== undefined && outcome !== 'busy';
  // While the job stays locked under this live worker, nobody else may run it: keep trying to
  // settle it as long as this worker runs. Should it stop first, its lock ids are no longer named
  // by a live heartbeat and the reaper unlocks the job.
  const settle = () => (ran ? dropHeldAdvance(runtime.pool, held.jobId, held.lockedBy) : releaseHeldAdvance(runtime.pool, held.jobId, held.lockedBy));
  try {
    await settle(); // once even when the worker is stopping (its signal aborted)
  } catch (e) {
    log.warn({ err: (e as Error).message, runId: held.runId, jobId: held.jobId }, 'could not settle the held advance job yet; retrying');
    await retryWithBackoff({ attempt: settle, backoff: SETTLE_BACKOFF, waitFirst: true, signal });
  }
  return outcome;
}
