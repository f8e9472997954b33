/** Shared zod pieces for built-in workflows' settings in the project configuration. */
import { z } from 'zod';
import { parseDuration } from '../runtime/duration.ts';

/** A duration such as '30m' or '24h', or milliseconds; checked when the configuration is read. */
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
