/**
 * The platform-neutral chat layer: what every chat platform shares. Intents in (`ChatCore.submit`,
 * intake.ts), messages out (the outbox, outbox.ts and deliver.ts), approval copies and reminders
 * (copies.ts), and the two interfaces a platform implements (platform.ts). It imports no chat SDK
 * and no code from bots/.
 */
import type pg from 'pg';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type { ModelClient } from '../model/types.ts';
import type { WorkflowRegistry } from '../runtime/registry.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { createChatDeliverer, type ChatDeliverer } from './deliver.ts';
import { ChatCore } from './intake.ts';
import type { ChatPlatform } from './platform.ts';

export { ChatCore, parseChatCommand, type Intent, type SubmitResult, type DeliveryKey, type ChatCommand } from './intake.ts';
export { createChatDeliverer, type ChatDeliverer } from './deliver.ts';
export type { DeliveryOutcome } from './deliver/context.ts';
export type { ChatAdapter, ChatPlatform, ChatView, Destination, DeliveryFailure, Posted, Rendered } from './platform.ts';
export type { Where } from './outbox.ts';
export type { EditForm, ResolveForm, Refusable } from './intake/amend.ts';
export type { AdapterContext, ChatPlatformEntry } from './platform-entry.ts';

// ----- What the adapters (bots/<platform>) use: this file is the only door they go through. ----
// Besides it they import only view types from src/views (type-only). Nothing here hands them a
// pool: what they need of the database goes through ChatCore (submit, viewOf, eligibility,
// teamsDirectory).
export { notice, type ChatReply, type HomeView, type RunSummary, type WorkflowSummary } from './replies.ts';
export * from './sentences.ts';
export { eligibilityOnView, type ViewedMessage } from './viewer.ts';
export { namesOf, rememberName, type NameSource } from './people.ts';
export { personLabel, platformLabel } from '../views/people.ts';
export type { TeamsContact, TeamsDirectory, TeamsSeen, TeamsUserSeen } from './directory.ts';
export type { Eligibility, IneligibleReason } from '../approvals/eligibility.ts';
export { formatPrincipal, parsePrincipal, samePrincipal, type Principal } from '../common/principals.ts';
export type { Logger } from '../common/log.ts';
export { TollgateError } from '../common/errors.ts';
export type { Config } from '../config/config.ts';
export type { RunStatus, StepStatus } from '../db/queries/runs.ts';
export type { WorkflowDefinition } from '../runtime/workflow.ts';
// The views' shared text and ids, so every platform says the same (types: import from src/views).
export { copyStillAsks } from '../views/approval-view.ts';
export { describeForm, fieldErrors } from '../views/form.ts';
export { PROPOSAL_ACTION_IDS } from '../views/proposal-view.ts';
export { ACTION_IDS, STATUS_LABELS } from '../views/run-view.ts';
export {
  approvalFallback,
  approvalHeadline,
  approvalLines,
  ESCALATED_AWAY,
  foldSteps,
  OUTDATED_HEADLINE,
  outdatedLines,
  outdatedPlain,
  formatDuration,
  stepText,
  truncate,
  type Markup,
} from '../views/text.ts';
// Stale buttons: the revision a button carries (src/chat/intake/stale.ts checks it at the click).
export { buttonValue, readButtonValue, readRevision } from './button-value.ts';
export type { Shown } from './intake/types.ts';
// HTTP: where an adapter mounts its routes, and the body helpers (src/common/http.ts).
export { readBody, sendJson, type HttpRoutes } from '../common/http.ts';

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
  /** Reads free text in mentions and DMs (src/chat/understand.ts); without it free text gets the `run` form. */
  model?: ModelClient | undefined;
  /** The project's `tenants`: the Slack workspaces and Microsoft tenants served (src/chat/tenants.ts); empty or absent: all. */
  tenants?: readonly string[] | undefined;
}): Chat {
  const platforms = new Map<string, ChatPlatform>();
  for (const p of opts.platforms) {
    if (platforms.has(p.name))
      throw new TollgateError('TG_CHAT_PLATFORM_DUPLICATE', `Two chat platforms are named "${p.name}"; each platform is registered once.`);
    platforms.set(p.name, p);
  }
  const core = new ChatCore({
    pool: opts.pool,
    runtime: opts.runtime,
    registry: opts.registry,
    platforms,
    log: opts.log,
    model: opts.model,
    tenants: opts.tenants,
  });
  const deliverer = createChatDeliverer({
    pool: opts.pool,
    platforms,
    log: opts.log,
    ...(opts.reminderLeadMs !== undefined ? { reminderLeadMs: opts.reminderLeadMs } : {}),
  });
  return { core, deliverer };
}
