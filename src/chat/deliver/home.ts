/**
 * A person's home page (platforms that have one, Slack's App Home), published again: what waits
 * for their decision and the runs they asked for.
 */
import { listPendingApprovals } from '../../approvals/index.ts';
import type { Principal } from '../../common/principals.ts';
import { enqueueHomeDelivery } from '../../db/queries/chat-outbox.ts';
import { listRunsRequestedBy } from '../../db/queries/run-views.ts';
import { countChatApiError } from '../../telemetry/metrics.ts';
import { toApprovalView } from '../../views/approval-view.ts';
import { toRunSummary } from '../summaries.ts';
import { PlatformNotConfigured, type DeliveryContext, type DeliveryOutcome } from './context.ts';

export async function deliverHome(ctx: DeliveryContext, who: Pick<Principal, 'platform' | 'tenant' | 'user'>): Promise<DeliveryOutcome> {
  const { pool, log } = ctx;
  const platform = ctx.platforms.get(who.platform);
  if (!platform) throw new PlatformNotConfigured(who.platform);
  if (!platform.publishHome) return 'nothing';
  const principal: Principal = { platform: who.platform, tenant: who.tenant, user: who.user };
  const [runs, pending] = await Promise.all([listRunsRequestedBy(pool, principal, 10), listPendingApprovals(pool, principal)]);
  try {
    await platform.publishHome(principal, { runs: runs.map(toRunSummary), approvals: pending.map(toApprovalView) });
    return 'updated';
  } catch (e) {
    const failure = platform.classify(e);
    countChatApiError(who.platform, failure);
    if (failure.kind === 'permanent') {
      log.warn({ platform: who.platform, user: who.user, code: failure.code }, 'the platform refused a home page for good');
      return 'nothing';
    }
    // A home page has no row to keep a wait on: its (coalesced) job is re-scheduled instead.
    await enqueueHomeDelivery(pool, who, new Date(Date.now() + Math.max(1000, failure.retryAfterMs ?? 5000)));
    return 'deferred';
  }
}
