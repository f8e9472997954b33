/**
 * Task `run-sweep`: re-enqueues runs that should be moving but have no advance job left (see
 * src/runtime/sweep.ts). Scheduled every minute by the worker's crontab. Thin.
 */
import type { Task } from 'graphile-worker';
import type { Runtime } from '../src/runtime/runtime.ts';
import { sweepStuckRuns } from '../src/runtime/sweep.ts';

export const identifier = 'run-sweep';

export const crontabLine = `* * * * * ${identifier}`;

export function makeRunSweep(runtime: Runtime): Task {
  return async () => {
    const ids = await sweepStuckRuns(runtime.pool);
    if (ids.length > 0) runtime.log.warn({ runs: ids }, 'enqueued runs that had no advance job left');
  };
}
