/**
 * Task `retention-purge`: drops step inputs/outputs and event payloads older than the project
 * configuration's `retention.days` (scheduled daily by the worker's crontab when it is set).
 * Thin: the work is in `src/audit/retention.ts`.
 */
import { z } from 'zod';
import type { Task } from 'graphile-worker';
import type { Runtime } from '../src/runtime/runtime.ts';
import { purgeOlderThan } from '../src/audit/retention.ts';

export const identifier = 'retention-purge';

/** Cron line for graphile-worker: daily at 03:17, or none when retention is not configured. */
export function crontabLine(days: number | undefined): string | undefined {
  return days === undefined ? undefined : `17 3 * * * ${identifier}`;
}

// Cron jobs carry `{_cron: {...}}`; a manual job may pass `days` to override the configuration.
const payloadSchema = z.object({ days: z.number().int().min(0).optional() }).passthrough();

export function makeRetentionPurge(runtime: Runtime): Task {
  return async (payload, helpers) => {
    const parsed = payloadSchema.safeParse(payload ?? {});
    const days = (parsed.success ? parsed.data.days : undefined) ?? runtime.project.retention.days;
    if (days === undefined) {
      helpers.logger.info('retention-purge: retention.days is not set; nothing purged');
      return;
    }
    const result = await purgeOlderThan(runtime.pool, days);
    runtime.log.info({ ...result, days }, 'retention purge done');
  };
}
