/**
 * Durations as workflows write them (`ctx.sleep`, approval timeouts): milliseconds, or a string
 * such as '500ms', '2s', '5m', '1h', '1d'. A module of its own so that src/approvals/types.ts can
 * name them without importing the workflow API, which imports it back.
 */
import { z } from 'zod';
import { TollgateError } from '../common/errors.ts';

/** A duration in ms, or a string such as '500ms', '2s', '5m', '1h', '1d'. */
export type Duration = number | string;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(d: Duration): number {
  if (typeof d === 'number') {
    if (!Number.isFinite(d) || d < 0) throw new TollgateError('TG_DURATION_INVALID', `Duration ${d} is invalid: give milliseconds >= 0.`);
    return d;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(d);
  if (!m) throw new TollgateError('TG_DURATION_INVALID', `Duration "${d}" is invalid: write a number of ms, or e.g. '500ms', '30s', '5m', '2h', '1d'.`);
  return Math.round(Number(m[1]) * (UNITS[m[2] as string] as number));
}

/**
 * A duration in the project configuration (a workflow's setting, a policy's deadline): checked
 * when the configuration is read, with the sentence a person can act on.
 */
export const durationSetting = z.union([z.string(), z.number()]).refine(
  (d) => {
    try {
      parseDuration(d);
      return true;
    } catch {
      return false;
    }
  },
  { message: "a duration such as '30m', '24h', '2d' or a number of milliseconds" },
);
