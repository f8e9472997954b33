/**
 * Task `audit-checkpoint`: every minute, a keyed checkpoint of the chains changed since the last
 * one (src/audit/checkpoint.ts). The minute is the window in which a run deleted whole goes
 * unnoticed by `audit verify`.
 */
import type { Task } from 'graphile-worker';
import type pg from 'pg';
import type { Logger } from '../src/common/log.ts';
import { writeCheckpoint } from '../src/audit/checkpoint.ts';

export const identifier = 'audit-checkpoint';
export const crontabLine = `* * * * * ${identifier}`;

export function makeAuditCheckpoint(pool: pg.Pool, log: Logger): Task {
  return async () => {
    const named = await writeCheckpoint(pool);
    if (named > 0) log.debug({ chains: named }, 'audit checkpoint written');
  };
}
