/**
 * What every part of the outbox's delivery shares (src/chat/deliver.ts): the outcomes it reports,
 * the platforms of this process and the error for a row whose platform is not one of them.
 */
import type pg from 'pg';
import { TollgateError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import type { ChatPlatform } from '../platform.ts';

export type DeliveryOutcome = 'posted' | 'updated' | 'unchanged' | 'deferred' | 'nothing';

/** Thrown (so the job is retried) when a row names a platform this process does not have. */
export class PlatformNotConfigured extends TollgateError {
  constructor(platform: string) {
    super(
      'TG_CHAT_NOT_CONFIGURED',
      `Chat platform "${platform}" is not configured in this process, so its messages wait; configure it (see docs/slack.md or docs/teams.md) and they catch up.`,
      { platform },
    );
  }
}

export interface DeliveryContext {
  pool: pg.Pool;
  platforms: ReadonlyMap<string, ChatPlatform>;
  log: Logger;
  /** The names of the platforms configured here (an approval gets copies on these only). */
  names: ReadonlySet<string>;
  /** The platforms with a home page (`publishHome`). */
  withHome: ReadonlySet<string>;
  /** How long before an approval's deadline its approvers are reminded (at most half-way). */
  reminderLeadMs: number;
}

export function deliveryContext(opts: { pool: pg.Pool; platforms: ReadonlyMap<string, ChatPlatform>; log: Logger; reminderLeadMs?: number }): DeliveryContext {
  const { pool, platforms } = opts;
  return {
    pool,
    platforms,
    log: opts.log.child({ component: 'chat-deliver' }),
    names: new Set(platforms.keys()),
    withHome: new Set([...platforms.values()].filter((p) => p.publishHome !== undefined).map((p) => p.name)),
    reminderLeadMs: opts.reminderLeadMs ?? 3_600_000,
  };
}

/** The platform a row lives on; PlatformNotConfigured when this process does not have it. */
export function platformOf(ctx: Pick<DeliveryContext, 'platforms'>, row: { platform: string }): ChatPlatform {
  const p = ctx.platforms.get(row.platform);
  if (!p) throw new PlatformNotConfigured(row.platform);
  return p;
}
