/**
 * The platform-neutral chat layer: what every chat platform shares. Intents in (`ChatCore.submit`,
 * intake.ts), messages out (the outbox, outbox.ts and deliver.ts), approval copies and reminders
 * (copies.ts), and the two interfaces a platform implements (platform.ts). It imports no chat SDK
 * and no code from bots/.
 */
import type pg from 'pg';
import type { Logger } from '../common/log.ts';
import type { ModelClient } from '../model/types.ts';
import type { WorkflowRegistry } from '../runtime/registry.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { createChatDeliverer, type ChatDeliverer } from './deliver.ts';
import { ChatCore } from './intake.ts';
import type { ChatPlatform } from './platform.ts';

export { ChatCore, type Intent, type SubmitResult, type DeliveryKey, type ChatCommand } from './intake.ts';
export { createChatDeliverer, type ChatDeliverer, type DeliveryOutcome } from './deliver.ts';
export type { ChatAdapter, ChatPlatform, ChatView, Destination, DeliveryFailure, Posted, Rendered } from './platform.ts';
export type { Where } from './outbox.ts';

export interface Chat {
  readonly core: ChatCore;
  readonly deliverer: ChatDeliverer;
}

export function createChat(opts: {
  pool: pg.Pool;
  runtime: Runtime;
  registry: WorkflowRegistry;
  log: Logger;
  platforms: ChatPlatform[];
  /** How long before an approval's deadline approvers are reminded (default 1 h; at most half-way). */
  reminderLeadMs?: number;
  /** Reads free text in mentions and DMs (src/intents/understand.ts); without it free text gets the `run` form. */
  model?: ModelClient | undefined;
}): Chat {
  const platforms = new Map<string, ChatPlatform>();
  for (const p of opts.platforms) {
    if (platforms.has(p.name)) throw new Error(`Two chat platforms are named "${p.name}"; each platform is registered once.`);
    platforms.set(p.name, p);
  }
  const core = new ChatCore({ pool: opts.pool, runtime: opts.runtime, registry: opts.registry, platforms, log: opts.log, model: opts.model });
  const deliverer = createChatDeliverer({ pool: opts.pool, platforms, log: opts.log, ...(opts.reminderLeadMs !== undefined ? { reminderLeadMs: opts.reminderLeadMs } : {}) });
  return { core, deliverer };
}
