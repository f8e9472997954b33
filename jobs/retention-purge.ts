/**
 * Task `retention-purge`: purges the personal data of runs finished more than the project
 * configuration's `retention.days` ago (90 unless configured), scheduled daily by the worker's
 * crontab unless retention is `"off"`. Thin: the work is in `src/audit/retention.ts`.
 */
import { z } from 'zod';
import type { Task } from 'graphile-worker';
import type { Runtime } from '../src/runtime/runtime.ts';
import { purgeOlderThan } from '../src/audit/retention.ts';

export const identifier = 'retention-purge';

/** Cron line for graphile-worker: daily at 03:17, or none when retention is turned off. */
export function crontabLine(days: number | 'off'): string | undefined {
  return days === 'off' ? undefined : `17 3 * * * ${identifier}`;
}

// Cron jobs carry `{_cron: {...}}`; a manual job may pass `days` to override the configuration.
const payloadSchema = z.object({ days: z.number().int().min(0).optional() }).passthrough();

export function makeRetentionPurge(runtime: Runtime): Task {
  return async (payload, helpers) => {
    const parsed = payloadSchema.safeParse(payload ?? {});
    const days = (parsed.success ? parsed.data.days : undefined) ?? runtime.project.retention.days;
    if (days === 'off') {
      helpers.logger.info('retention-purge: retention.days is "off"; nothing purged');
      return;
    }
    const result = await purgeOlderThan(runtime.pool, days);
    runtime.log.info({ ...result, days }, 'retention purge done');
  };
}
