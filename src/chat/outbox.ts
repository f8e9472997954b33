/**
 * The chat outbox, as the chat layer writes to it: a run's live message, fixed replies, and where
 * they go (`Where`). The rows, delivery keys and jobs are written by the data layer
 * (src/db/queries/chat-outbox.ts); every function takes the caller's transaction, so a delivery
 * key, the intent it carried (a run, a retry) and the messages it asks for commit together or not
 * at all.
 */
import { z } from 'zod';
import type { Principal } from '../common/principals.ts';
import type { Queryable } from '../db/queryable.ts';
import { enqueueMessageDelivery, insertReply, redrawReply } from '../db/queries/chat-outbox.ts';
import type { Rendered } from './platform.ts';

/** A place in a chat: a platform's conversation (and thread) in a tenant. */
export interface Where {
  platform: string;
  tenant: string | null;
  conversation: string;
  thread: string | null;
  /** Platform-only addressing, stored as the platform gave it. */
  address?: unknown;
  /** The conversation is a direct one with the person addressed: no need to hide a message from others. */
  direct?: boolean;
}

/** A stored `Where` (a deferred click's job payload), read back. */
export const whereSchema = z.object({
  platform: z.string(),
  tenant: z.string().nullable(),
  conversation: z.string(),
  thread: z.string().nullable(),
  address: z.unknown().optional(),
  direct: z.boolean().optional(),
});

/**
 * A fixed reply (help, status, an explanation), already rendered by its platform, posted once
 * through the outbox. With `visibleTo`, only that person sees it (where the platform can do that).
 */
export async function addReply(q: Queryable, where: Where, message: Rendered, opts: { visibleTo?: Principal | null } = {}): Promise<string> {
  const id = await insertReply(q, where, message, opts.visibleTo ?? null);
  await enqueueMessageDelivery(q, id);
  return id;
}

/**
 * Draws a posted reply again with `message` (a proposal once confirmed): the delivery then
 * updates the posted message in place, or posts it if it was not posted yet.
 */
export async function replaceReply(q: Queryable, messageId: string, message: Rendered): Promise<void> {
  if (await redrawReply(q, messageId, message)) await enqueueMessageDelivery(q, messageId);
}
