/**
 * Task `run-advance`: advance one run (replay its workflow, execute its next steps). Thin: the
 * work is in `src/runtime/executor.ts`. The payload is checked at run time because jobs can be
 * added from SQL or by older code.
 */
import { z } from 'zod';
import type { Task } from 'graphile-worker';
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
    await runtime.advance(parsed.data.runId, `${processId}/${helpers.job.locked_by ?? 'worker'}`, helpers.abortSignal);
  };
}
