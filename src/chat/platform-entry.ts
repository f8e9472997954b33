/**
 * What each folder under bots/ exports as `chatPlatform` from its index: the boot
 * (bots/index.ts) finds the folders and builds a `ChatAdapter` from each, so a new platform is a
 * new folder and nothing else.
 */
import type { Logger } from '../common/log.ts';
import type { Config } from '../config/config.ts';
import type { ChatCore } from './intake.ts';
import type { ChatAdapter } from './platform.ts';

/** What the boot hands a platform: the configuration, the chat core (built after the adapters) and a logger. No pool. */
export interface AdapterContext {
  config: Config;
  /** The chat core; called when a request arrives, so it may be built after the adapters. */
  core: () => ChatCore;
  log: Logger;
}

export interface ChatPlatformEntry {
  /** The platform's name, as in principals: `slack`, `teams` … */
  readonly name: string;
  /** The adapter, or undefined when the platform is not configured (it logs what to set). */
  create(ctx: AdapterContext): ChatAdapter | undefined;
  /** Its route when it is not configured: the status and the sentence saying how to turn it on. */
  readonly unconfigured: { path: string; status: number; message: string };
}
