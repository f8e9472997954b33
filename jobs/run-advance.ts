/**
 * Task `run-advance`: advance one run (replay its workflow, execute its next steps). Thin: the
 * work is in `src/runtime/executor.ts`. The payload is checked at run time because jobs can be
 * added from SQL or by older code.
 */
import { z } from 'zod';
import type { Task } from 'graphile-worker';
import { TollgateError } from '../src/common/errors.ts';
import type { Runtime } from '../src/runtime/runtime.ts';

export const identifier = 'run-advance';

const payloadSchema = z.object({ runId: z.string().min(1) });

export function makeRunAdvance(runtime: Runtime, processId: string): Task {
  return async (payload, helpers) => {
    const parsed = payloadSchema.safeParse(payload);
    if (!parsed.success) {
      // Retrying a malformed payload cannot help; log it loudly and let the job complete.
      helpers.logger.error(`run-advance job ${helpers.job.id} has a malformed payload ${JSON.stringify(payload)}; expected {"runId": "run_…"}`);
      return;
    }
    const { runId } = parsed.data;
    const outcome = await runtime.advance(runId, `${processId}/${helpers.job.locked_by ?? 'worker'}`, helpers.abortSignal);
    if (outcome === 'busy') {
      // Another executor held the run past the lock wait. Either it is mid-step and carries on by
      // itself, or it is a connection that died without PostgreSQL noticing yet (a vanished host),
      // still holding the lock. Completing this job could leave the run with no job at all, so
      // fail it: Graphile Worker tries again later, with backoff, until the run is free.
      throw new TollgateError('TG_RUN_BUSY', `Run ${runId} is held by another executor; this advance will be retried.`, { runId });
    }
  };
}
