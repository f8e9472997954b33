/**
 * The two small interfaces every chat platform implements, and the neutral shapes they exchange
 * with the core (src/chat). Nothing here knows Slack or Teams.
 *
 * - `ChatPlatform`: how the core reaches people on one platform. It renders the core's views into
 *   the platform's own JSON (Block Kit, an Adaptive Card), posts and updates messages, opens a DM
 *   with a principal, and says whether an error of its API is worth retrying. The outbox
 *   (src/chat/deliver.ts) owns every wait and retry: a platform's SDK retries stay bounded.
 * - `ChatAdapter`: how the boot (src/app.ts) runs a platform: its HTTP route, start and stop, and
 *   the `ChatPlatform` it brings.
 *
 * A platform maps its verified senders to principals and principals to addresses (`openDm`), so
 * no code in src/ parses a platform's ids. A posted message's reference is stored as it came:
 * neutral columns (conversation, thread, message id) plus an `address` only that platform reads.
 */
import type { Principal } from '../common/principals.ts';
import type { HttpRoutes } from '../common/http.ts';
import type { ApprovalCopy, ApprovalView } from '../views/approval-view.ts';
import type { RunView } from '../views/run-view.ts';
import type { ChatReply, HomeView } from './replies.ts';

/** Everything the core asks a platform to draw. */
export type ChatView =
  { kind: 'run'; run: RunView } | { kind: 'approval'; approval: ApprovalView; copy: ApprovalCopy } | { kind: 'reminder'; approval: ApprovalView } | ChatReply;

/** A rendering: the platform's JSON (opaque to the core, hashed to skip no-op updates) and plain fallback text. */
export interface Rendered {
  text: string;
  body: unknown;
}

/** Where a message goes, in neutral terms. */
export interface Destination {
  tenant: string | null;
  conversation: string;
  thread: string | null;
  /** What only this platform reads (Teams' serviceUrl …), stored as the platform gave it. */
  address: unknown;
  /** Only this principal sees the message (Slack's ephemeral); null for everyone in the conversation. */
  visibleTo: Principal | null;
}

export interface Posted {
  /** The platform's id of the message, for later updates; null when it cannot be updated (ephemeral). */
  messageId: string | null;
  /** The conversation the platform reports, when it differs from the one asked for (a DM by user id). */
  conversation?: string;
  address?: unknown;
}

/** What a failed API call means for the outbox. */
export type DeliveryFailure =
  /** Worth trying again: after `retryAfterMs` when the platform said (429 Retry-After), else with backoff. */
  | { kind: 'retry'; retryAfterMs?: number; reason: string }
  /** No retry can help (not in the channel, message deleted, bad request): given up on that copy, with the code kept. */
  | { kind: 'permanent'; code: string; reason: string };

export interface ChatPlatform {
  /** The platform's name, as in principals and origins: `slack`, `teams` … */
  readonly name: string;
  render(view: ChatView): Rendered;
  post(to: Destination, message: Rendered): Promise<Posted>;
  update(to: Destination & { messageId: string }, message: Rendered): Promise<void>;
  /** The conversation for direct messages with this principal (opened if need be). */
  openDm(to: Principal): Promise<{ conversation: string; address?: unknown }>;
  classify(error: unknown): DeliveryFailure;
  /**
   * Optional: a personal page listing the person's recent runs and what waits for their decision
   * (Slack's App Home). Platforms without one leave it out; the core then refreshes nothing.
   */
  publishHome?(to: Principal, home: HomeView): Promise<void>;
  /**
   * Optional: the person's display name as the platform knows it now (Slack's `users.info`), or
   * undefined when it has none. Asked by the worker (src/chat/people.ts), never before an ack;
   * platforms that send names with every request (Teams' `from.name`) leave it out.
   */
  displayName?(who: Principal): Promise<string | undefined>;
}

export interface ChatAdapter {
  readonly platform: ChatPlatform;
  /** Mounts the platform's HTTP route(s), if it takes requests over HTTP. */
  mount(http: HttpRoutes): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}
