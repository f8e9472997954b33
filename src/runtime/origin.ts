/**
 * Where a run was asked for (`runs.origin`), one typed shape used everywhere: the CLI, every chat
 * platform, and the delivery trigger (migrations/functions/chat_delivery.sql).
 *
 * - `{platform: 'cli', osUser?}`: started from the command line; nothing is posted anywhere.
 * - A chat platform: `{platform, tenant, conversation, thread}`. The run's live message goes to
 *   `conversation` (in `thread` when set). Any run with a chat origin is listed in
 *   `tollgate.chat_runs`, which is how its events reach the outbox.
 * Stored origins are parsed, never trusted (rows written by older code, or by hand).
 */
import { z } from 'zod';
import { PLATFORM_NAME } from '../common/principals.ts';

export const cliOriginSchema = z.object({
  platform: z.literal('cli'),
  /** The OS user who started it (`cli:<host>:<user>`), also when it was started as another principal with `--as`. */
  osUser: z.string().min(1).optional(),
});

export const chatOriginSchema = z.object({
  platform: z
    .string()
    .regex(PLATFORM_NAME)
    .refine((p) => p !== 'cli', 'a chat origin names a chat platform, not cli'),
  tenant: z.string().min(1),
  /** Null when the run was asked for somewhere it cannot post (a form opened from App Home). */
  conversation: z.string().min(1).nullable(),
  thread: z.string().min(1).nullable(),
});

export const runOriginSchema = z.union([cliOriginSchema, chatOriginSchema]);

export type CliOrigin = z.infer<typeof cliOriginSchema>;
export type ChatOrigin = z.infer<typeof chatOriginSchema>;
export type RunOrigin = z.infer<typeof runOriginSchema>;

/** The stored origin, or null when there is none or it is not one of the shapes above. */
export function parseOrigin(value: unknown): RunOrigin | null {
  const parsed = runOriginSchema.safeParse(value);
  return parsed.success ? parsed.data : null;
}
