/**
 * The shapes of chat intake: the intents a platform submits, what `submit` answers, and the
 * deferred intents a `chat-intent` job carries out after the ack.
 */
import type pg from 'pg';
import { z } from 'zod';
import type { DecideOutcome } from '../../approvals/types.ts';
import type { Logger } from '../../common/log.ts';
import { principalSchema, type Principal } from '../../common/principals.ts';
import { CommandSyntaxError, parseCommand, type Command } from '../../intents/command.ts';
import type { ModelClient } from '../../model/types.ts';
import { runOriginSchema } from '../../runtime/origin.ts';
import type { WorkflowRegistry } from '../../runtime/registry.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import type { TeamsSeen } from '../directory.ts';
import { whereSchema, type Where } from '../outbox.ts';
import type { ChatPlatform } from '../platform.ts';
import type { ChatReply } from '../replies.ts';

/** A platform's delivery key: what it sends again on a retry (Slack: event_id, trigger_id, view id). */
export interface DeliveryKey {
  key: string;
  /** What kind of request it was, for people reading the table. */
  kind: string;
}

/**
 * What the clicked copy showed (stale buttons, stale.ts): the revision its button carried and,
 * when the platform says, which posted message it was (so that message is redrawn). A click
 * without it (a message posted before versions existed, a typed command) is carried out as before.
 */
export interface Shown {
  revision: number;
  message?: { platform: string; conversation: string; messageId: string };
}

export const shownSchema = z.object({
  revision: z.number().int().nonnegative(),
  message: z.object({ platform: z.string(), conversation: z.string(), messageId: z.string() }).optional(),
});

/** A parsed command, or the sentence saying why the text was not one. */
export type ChatCommand = Command | { kind: 'invalid'; message: string };

/** Reads a message's text (mentions already taken out) with the command grammar; a syntax error becomes an answer, not a failure. */
export function parseChatCommand(text: string): ChatCommand {
  try {
    return parseCommand(text);
  } catch (e) {
    if (!(e instanceof CommandSyntaxError)) throw e;
    return { kind: 'invalid', message: e.message };
  }
}

export type Intent =
  /**
   * A command from a slash command, a mention or a DM. `where` is where the run's message goes.
   * `understand`: free text (`command.kind === 'text'`) goes to the model, when one is configured
   * (mentions and DMs set it; a slash command never does: its grammar never calls the model).
   */
  (
    | {
        kind: 'command';
        command: ChatCommand;
        actor: Principal;
        where: Where | null;
        key?: DeliveryKey;
        replyVia: 'return' | 'outbox';
        carryOut?: CarryOut;
        understand?: boolean;
      }
    /** A form submission that starts a workflow with these (text) values. */
    | {
        kind: 'start';
        workflow: string;
        version?: number;
        values: Record<string, string | undefined>;
        actor: Principal;
        where: Where | null;
        key: DeliveryKey;
        carryOut?: CarryOut;
      }
    /** A Retry or Cancel button. Refusals are explained to the actor at `explainAt`; `shown`: see `Shown`. */
    | {
        kind: 'operate';
        action: 'retry' | 'cancel';
        runId: string;
        actor: Principal;
        key: DeliveryKey;
        explainAt: Where | null;
        carryOut?: CarryOut;
        shown?: Shown;
      }
    /**
     * An approval decision. Anything but a recorded decision is explained to the actor at `explainAt`;
     * `shown`: see `Shown`. `via`: where it was made, kept with the decision ('console'); by default the
     * platform of `explainAt`, else the actor's.
     */
    | {
        kind: 'decide';
        approvalId: string;
        decision: 'approve' | 'reject';
        comment?: string;
        actor: Principal;
        explainAt: Where | null;
        carryOut?: CarryOut;
        via?: string;
        shown?: Shown;
      }
    /** Confirm under a proposal (a free-text request understood): starts its run, once; only the asker may. */
    | { kind: 'confirm'; proposalId: string; actor: Principal; key: DeliveryKey; explainAt: Where | null; carryOut?: CarryOut }
    /**
     * Edit and retry, or Resolve by hand (Skip and compensate, Give up), submitted from a form
     * (intake/amend.ts); carried out now, so field errors go back into the form. `via` is where it
     * came from when that is not the actor's platform (the console).
     */
    | {
        kind: 'amend';
        runId: string;
        change:
          | { action: 'edit'; values: Record<string, string | undefined> }
          | { action: 'by-hand'; output: string; reason: string }
          | { action: 'skip'; reason: string }
          | { action: 'give-up'; reason: string };
        actor: Principal;
        key: DeliveryKey;
        via?: string;
      }
    /** An activity that asks for nothing (an installation, a refresh): only what it said of where people are. */
    | { kind: 'introduce' }
  ) & {
    /**
     * What the activity said of where its sender and tenant can be reached later (Teams' directory,
     * directory.ts), recorded in the same transaction as the request.
     */
    remember?: TeamsSeen;
  };

/**
 * When an intent that changes something is carried out: 'now' (default), before `submit`
 * resolves, so its outcome can be shown in the answer (Teams' returned card) and a started run
 * exists when it resolves; 'after-ack', recorded durably first (a run start with its run id
 * given, a click) and carried out by the worker right after, a refusal explained at `explainAt`
 * (which a click then needs), so the ack waits for one grouped insert only.
 */
export type CarryOut = 'now' | 'after-ack';

/** A deferred click as its `chat-intent` job carries it (the intent, minus what only the ack needed). */
const preparedRunSchema = z.object({
  id: z.string(),
  workflow: z.string(),
  version: z.number(),
  input: z.unknown(),
  requester: principalSchema.nullable(),
  origin: runOriginSchema.nullable(),
});

export const deferredIntentSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('start'), run: preparedRunSchema, where: whereSchema.nullable() }),
  z.object({
    kind: z.literal('operate'),
    action: z.enum(['retry', 'cancel']),
    runId: z.string(),
    actor: principalSchema,
    explainAt: whereSchema,
    shown: shownSchema.optional(),
  }),
  z.object({
    kind: z.literal('decide'),
    approvalId: z.string(),
    decision: z.enum(['approve', 'reject']),
    comment: z.string().optional(),
    actor: principalSchema,
    explainAt: whereSchema,
    via: z.string().optional(),
    shown: shownSchema.optional(),
  }),
  // Free text for the model: understood by the worker, answered in the thread (never before the ack).
  z.object({ kind: z.literal('understand'), text: z.string(), actor: principalSchema, where: whereSchema }),
  z.object({ kind: z.literal('confirm'), proposalId: z.string(), actor: principalSchema, explainAt: whereSchema }),
]);
export type DeferredIntent = z.infer<typeof deferredIntentSchema>;

export interface SubmitResult {
  /** The delivery key was seen before: nothing was done again. */
  duplicate: boolean;
  /**
   * What to tell the person when the intent asked for `replyVia: 'return'`; for `start`: the run
   * started (or already recorded), the form with its errors, or the workflows when none is named so.
   */
  reply?: ChatReply;
  /** The run started or touched. */
  runId?: string;
  /** For `decide`: what the approvals engine answered. */
  decided?: DecideOutcome;
  /**
   * Field errors, by field name; nothing was recorded. For `start`, the workflow's fields (and
   * `reply` is the form again, with them); for a `decide` reject without a reason, `comment`.
   */
  fieldErrors?: Record<string, string>;
  /** For `amend`: why nothing was changed (not allowed, the run's state, a value refused). */
  refused?: string;
}

export interface ChatCoreOptions {
  pool: pg.Pool;
  runtime: Runtime;
  registry: WorkflowRegistry;
  platforms: ReadonlyMap<string, ChatPlatform>;
  log: Logger;
  /** The model that reads free text (src/model/client.ts); without one, or not configured, free text is answered with the `run` form. */
  model?: ModelClient | undefined;
  /** The project's `tenants` (src/chat/tenants.ts): the workspaces and tenants served; empty or absent: all. */
  tenants?: readonly string[] | undefined;
}
