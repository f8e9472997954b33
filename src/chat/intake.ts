/**
 * Intent handling for every chat platform: `submit(intent)` (ARCHITECTURE.md, "The path of a click"). A platform adapter parses
 * a request (a command, a button click, a form submission) into an `Intent` with the verified
 * actor; `submit` deduplicates it by its platform's delivery key and records it in one transaction
 * together with the run, decision or operation it causes and any message it asks for. Only after
 * `submit` resolves may the adapter acknowledge the platform (invariant 8).
 *
 * Group commit (src/db/group-commit.ts): intents that arrive together share one statement.
 * A run start (a `run` command, a form submission: its input checked and its run id given here)
 * and the clicks whose outcome the ack does not need (`carryOut: 'after-ack'`: an approval
 * decision, Retry, Cancel) are made durable as `chat-intent` jobs with their delivery keys, a
 * whole burst per statement (intake-writes.ts), and carried out by the worker right after the ack
 * (`carryOut`, jobs/chat-intent.ts), which explains a refusal through the outbox. Creating a run
 * costs the database far more than recording the request for it (its events' audit chain, its
 * job, its chat rows), so that work is kept out of the ack. A write starts at once when none is
 * in flight, so a lone request waits for no one.
 *
 * General notes
 * - What to tell the person comes back as a neutral `ChatReply` (or goes through the outbox, for
 *   replies in a conversation and explanations to one clicker); the platform renders it.
 * - A refused click is explained through the outbox (`explain`), never inline: the ack must not
 *   wait for the platform's API.
 * - Who may retry, cancel, read a run's status or decide an approval is decided by the runtime
 *   (src/intents/authorize.ts, src/approvals/policy.ts), from the verified actor; nothing here
 *   checks on its own.
 */
import type pg from 'pg';
import { z } from 'zod';
import { listPendingApprovals } from '../approvals/index.ts';
import type { DecideOutcome } from '../approvals/types.ts';
import { withRetriedTransaction, withTransaction } from '../db/transaction.ts';
import { TollgateError } from '../errors.ts';
import { CommandSyntaxError, parseCommand, type Command } from '../intents/command.ts';
import type { Logger } from '../log.ts';
import { principalSchema, type Principal } from '../principals.ts';
import type { Queryable } from '../runtime/journal.ts';
import { runOriginSchema, type ChatOrigin } from '../runtime/origin.ts';
import type { WorkflowRegistry } from '../runtime/registry.ts';
import { checkRunInput, printable } from '../runtime/run-input.ts';
import type { PreparedRun, Runtime } from '../runtime/runtime.ts';
import type { WorkflowDefinition } from '../runtime/workflow.ts';
import { loadRunMessageView, toApprovalView } from '../views/approval-view.ts';
import { describeForm, describeInputs, fieldErrors, fromFormValues } from '../views/form.ts';
import { listRunsRequestedBy } from '../views/run-view.ts';
import { GroupCommit } from '../db/group-commit.ts';
import { addReply, claimDeliveryKey, enqueueHomeDelivery, whereSchema, type Where } from './outbox.ts';
import { writeDeferredIntents, writeRunStarts, type DeferredWrite, type RunStartWrite } from './intake-writes.ts';
import type { ChatPlatform } from './platform.ts';
import { notice, type ChatReply } from './replies.ts';
import { toRunSummary, toWorkflowSummary } from './summaries.ts';

/** A platform's delivery key: what it sends again on a retry (Slack: event_id, trigger_id, view id). */
export interface DeliveryKey {
  key: string;
  /** What kind of request it was, for people reading the table. */
  kind: string;
}

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
  /** A command from a slash command, a mention or a DM. `where` is where the run's message goes. */
  | { kind: 'command'; command: ChatCommand; actor: Principal; where: Where | null; key?: DeliveryKey; replyVia: 'return' | 'outbox'; carryOut?: CarryOut }
  /** A form submission that starts a workflow with these (text) values. */
  | { kind: 'start'; workflow: string; version?: number; values: Record<string, string | undefined>; actor: Principal; where: Where | null; key: DeliveryKey; carryOut?: CarryOut }
  /** A Retry or Cancel button. Refusals are explained to the actor at `explainAt`. */
  | { kind: 'operate'; action: 'retry' | 'cancel'; runId: string; actor: Principal; key: DeliveryKey; explainAt: Where | null; carryOut?: CarryOut }
  /** An approval decision. Anything but a recorded decision is explained to the actor at `explainAt`. */
  | { kind: 'decide'; approvalId: string; decision: 'approve' | 'reject'; comment?: string; actor: Principal; explainAt: Where | null; carryOut?: CarryOut };

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

const deferredIntentSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('start'), run: preparedRunSchema, where: whereSchema.nullable() }),
  z.object({ kind: z.literal('operate'), action: z.enum(['retry', 'cancel']), runId: z.string(), actor: principalSchema, explainAt: whereSchema }),
  z.object({
    kind: z.literal('decide'),
    approvalId: z.string(),
    decision: z.enum(['approve', 'reject']),
    comment: z.string().optional(),
    actor: principalSchema,
    explainAt: whereSchema,
  }),
]);
export type DeferredIntent = z.infer<typeof deferredIntentSchema>;

export interface SubmitResult {
  /** The delivery key was seen before: nothing was done again. */
  duplicate: boolean;
  /** What to tell the person when the intent asked for `replyVia: 'return'`. */
  reply?: ChatReply;
  /** The run started or touched. */
  runId?: string;
  /** For `decide`: what the approvals engine answered. */
  decided?: DecideOutcome;
  /** For `start`: field errors, by field name; nothing was recorded. */
  fieldErrors?: Record<string, string>;
}

export interface ChatCoreOptions {
  pool: pg.Pool;
  runtime: Runtime;
  registry: WorkflowRegistry;
  platforms: ReadonlyMap<string, ChatPlatform>;
  log: Logger;
}

export class ChatCore {
  readonly #o: ChatCoreOptions;
  readonly #starts: GroupCommit<RunStartWrite, boolean>;
  readonly #deferred: GroupCommit<DeferredWrite, boolean>;

  constructor(o: ChatCoreOptions) {
    this.#o = o;
    // One statement per write: atomic on its own, so the pool runs it without a transaction.
    this.#starts = new GroupCommit({ name: 'run starts', log: o.log, write: (items) => writeRunStarts(o.pool, items) });
    this.#deferred = new GroupCommit({ name: 'deferred clicks', log: o.log, write: (items) => writeDeferredIntents(o.pool, items) });
  }

  /** How many grouped writes carried how many intents so far (tests and the bench). */
  groupStats(): { starts: { batches: number; items: number }; deferred: { batches: number; items: number } } {
    return { starts: this.#starts.stats(), deferred: this.#deferred.stats() };
  }

  async submit(intent: Intent): Promise<SubmitResult> {
    switch (intent.kind) {
      case 'command':
        return this.#command(intent);
      case 'start':
        return this.#start(intent);
      case 'operate':
        return this.#operateIntent(intent);
      case 'decide':
        return this.#decide(intent);
    }
  }

  /** Records a one-off explanation for one person, through the outbox (no-op without a place to say it). */
  async explain(actor: Principal, at: Where | null, text: string, q: Queryable = this.#o.pool): Promise<void> {
    if (!at) return;
    const platform = this.#platform(at.platform);
    await addReply(q, at, platform.render(notice(text)), { visibleTo: at.direct ? null : actor });
  }

  /** Schedules a refresh of a person's home page (they opened it), deduplicated by the platform's key. */
  async openHome(actor: Principal, key: DeliveryKey): Promise<void> {
    await withTransaction(this.#o.pool, async (q) => {
      if (!(await claimDeliveryKey(q, actor.platform, key.key, key.kind))) return;
      await enqueueHomeDelivery(q, actor);
    });
  }

  /** The workflow, or undefined when no such name (and version) is registered. */
  workflow(name: string, version?: number): WorkflowDefinition | undefined {
    try {
      return this.#o.registry.get(name, version);
    } catch {
      return undefined;
    }
  }

  /** Validates text values for a workflow with its own schema (what `startRun` would check). */
  checkInput(def: WorkflowDefinition, values: Record<string, string | undefined>): { ok: true; input: unknown } | { ok: false; error: z.ZodError } {
    const parsed = checkRunInput(def.input, fromFormValues(describeForm(def.input), values));
    return parsed.success ? { ok: true, input: parsed.data } : { ok: false, error: parsed.error };
  }

  /** The reply for a workflow that cannot start with these values (schema issues, or field errors by name). */
  invalidParams(def: WorkflowDefinition, error: z.ZodError | Record<string, string>, given: Record<string, string>): ChatReply {
    const errors = 'issues' in error && Array.isArray(error.issues) ? fieldErrors(error as z.ZodError) : (error as Record<string, string>);
    return {
      kind: 'invalid-params',
      workflow: def.name,
      errors: Object.entries(errors).map(([field, message]) => ({ field, message })),
      inputs: describeInputs(def.input),
      // Echoed back (and stored, for replies through the outbox): no NUL may go into jsonb.
      given: Object.fromEntries(Object.entries(given).map(([k, v]) => [printable(k), printable(v)])),
      fields: describeForm(def.input),
      version: def.version,
    };
  }

  unknownWorkflow(name: string): ChatReply {
    return { kind: 'workflows', intro: `No workflow named \`${name}\`.`, workflows: this.#o.registry.latest().map(toWorkflowSummary) };
  }

  // ----- intents -----------------------------------------------------------------------------

  async #command(intent: Extract<Intent, { kind: 'command' }>): Promise<SubmitResult> {
    const { command, actor, where, key } = intent;
    const valid = command.kind === 'run' ? this.#checkRun(command) : undefined;
    if (valid && 'def' in valid) {
      const run = await this.#recordStart(valid.def, valid.input, actor, where, key, intent.carryOut);
      if (!run) return { duplicate: true, reply: notice('Already recorded.') };
      return {
        duplicate: false,
        runId: run.id,
        reply: notice(`Started *${run.workflow}* v${run.version} as \`${run.id}\`; its progress is posted ${where?.thread ? 'in the thread' : 'here'}.`),
      };
    }
    // Only commands that change something need to be recognised when re-sent, unless the reply
    // itself goes through the outbox (a mention's reply must not be posted twice).
    const changes = command.kind === 'retry' || command.kind === 'cancel' || intent.replyVia === 'outbox';
    return withTransaction(this.#o.pool, async (q) => {
      if (key && changes && !(await claimDeliveryKey(q, actor.platform, key.key, key.kind))) {
        return { duplicate: true, reply: notice('Already recorded.') };
      }
      const r = await this.#execute(q, command, actor, where);
      if (intent.replyVia === 'outbox' && where) {
        await addReply(q, where, this.#platform(where.platform).render(r.reply));
      }
      return { duplicate: false, ...r };
    });
  }

  async #start(intent: Extract<Intent, { kind: 'start' }>): Promise<SubmitResult> {
    const def = this.workflow(intent.workflow, intent.version) ?? this.workflow(intent.workflow);
    if (!def) return { duplicate: false, reply: this.unknownWorkflow(intent.workflow) };
    const checked = this.checkInput(def, intent.values);
    if (!checked.ok) return { duplicate: false, fieldErrors: fieldErrors(checked.error) };
    const run = await this.#recordStart(def, checked.input, intent.actor, intent.where, intent.key, intent.carryOut);
    return run ? { duplicate: false, runId: run.id } : { duplicate: true };
  }

  /**
   * Records a run started from chat, its input checked and its id given here, with its delivery
   * key, in the next grouped write. 'now': the run, its event, job and live message are written
   * then. 'after-ack': the request is, and the worker creates the run right after (`carryOut`).
   * Undefined when the key was recorded before (a platform's re-send: nothing written).
   */
  async #recordStart(
    def: WorkflowDefinition,
    input: unknown,
    actor: Principal,
    where: Where | null,
    key: DeliveryKey | undefined,
    carryOut: CarryOut = 'now',
  ): Promise<PreparedRun | undefined> {
    const run = this.#o.runtime.prepareRun({ workflow: def.name, version: def.version, input, requester: actor, origin: originOf(actor, where) });
    const keyOf = key ? { key: { platform: actor.platform, ...key } } : {};
    const recorded =
      carryOut === 'after-ack'
        ? await this.#deferred.submit({ ...keyOf, runId: run.id, payload: { kind: 'start', run, where } satisfies DeferredIntent })
        : await this.#starts.submit({ ...keyOf, run, message: where });
    if (!recorded) return undefined;
    this.#o.log.info({ runId: run.id, workflow: run.workflow, version: run.version }, carryOut === 'after-ack' ? 'run requested' : 'run queued');
    return run;
  }

  async #operateIntent(intent: Extract<Intent, { kind: 'operate' }>): Promise<SubmitResult> {
    if (intent.carryOut === 'after-ack' && intent.explainAt) {
      const payload: DeferredIntent = { kind: 'operate', action: intent.action, runId: intent.runId, actor: intent.actor, explainAt: intent.explainAt };
      const recorded = await this.#deferred.submit({ key: { platform: intent.actor.platform, ...intent.key }, payload });
      return { duplicate: !recorded, runId: intent.runId };
    }
    return withTransaction(this.#o.pool, async (q) => {
      if (!(await claimDeliveryKey(q, intent.actor.platform, intent.key.key, intent.key.kind))) return { duplicate: true };
      const outcome = await this.#operate(q, intent.action, intent.runId, intent.actor);
      // The refusal is recorded with the click and explained after the ack, through the outbox.
      if (!outcome.ok) await this.explain(intent.actor, intent.explainAt, outcome.text, q);
      return { duplicate: false, runId: intent.runId, reply: notice(outcome.text) };
    });
  }

  async #decide(intent: Extract<Intent, { kind: 'decide' }>): Promise<SubmitResult> {
    // A repeated decision is a no-op answered "already recorded", so decisions need no delivery key.
    if (intent.carryOut === 'after-ack' && intent.explainAt) {
      const { approvalId, decision, comment, actor, explainAt } = intent;
      const payload: DeferredIntent = { kind: 'decide', approvalId, decision, ...(comment !== undefined ? { comment } : {}), actor, explainAt };
      await this.#deferred.submit({ payload });
      return { duplicate: false };
    }
    // runtime.decide records the decision in its own transaction.
    const via = intent.explainAt?.platform ?? intent.actor.platform;
    const outcome = await this.#o.runtime.decide(intent.approvalId, intent.actor, intent.decision, intent.comment, { via });
    if (outcome.kind !== 'recorded') await this.explain(intent.actor, intent.explainAt, outcome.message);
    return { duplicate: false, decided: outcome };
  }

  /**
   * Carries out a click recorded with `carryOut: 'after-ack'` (the worker's `chat-intent` job),
   * in one transaction with its explanation: a refusal, or a decision that changed nothing, is
   * told to the clicker at `explainAt`. A payload this version cannot read is logged and dropped
   * (retrying would not make it readable).
   */
  async carryOut(payload: unknown): Promise<void> {
    const parsed = deferredIntentSchema.safeParse(payload);
    if (!parsed.success) {
      this.#o.log.error({ payload, issues: parsed.error.issues }, 'a deferred chat intent could not be read; dropped');
      return;
    }
    const intent = parsed.data;
    await withRetriedTransaction(this.#o.pool, async (q) => {
      if (intent.kind === 'start') {
        // Written again after a crash, the run already exists and nothing is written twice.
        const [created] = await writeRunStarts(q, [{ run: intent.run, message: intent.where }]);
        if (created) this.#o.log.info({ runId: intent.run.id, workflow: intent.run.workflow, version: intent.run.version }, 'run queued');
        return;
      }
      if (intent.kind === 'decide') {
        const outcome = await this.#o.runtime.decideWithin(q, intent.approvalId, intent.actor, intent.decision, intent.comment, { via: intent.explainAt.platform });
        if (outcome.kind !== 'recorded') await this.explain(intent.actor, intent.explainAt, outcome.message, q);
        return;
      }
      const outcome = await this.#operate(q, intent.action, intent.runId, intent.actor);
      if (!outcome.ok) await this.explain(intent.actor, intent.explainAt, outcome.text, q);
    });
  }

  /** Carries out a parsed command inside the caller's transaction; returns what to tell the person. */
  async #execute(q: Queryable, cmd: ChatCommand, actor: Principal, where: Where | null): Promise<{ reply: ChatReply; runId?: string }> {
    const { registry } = this.#o;
    const workflows = () => registry.latest().map(toWorkflowSummary);
    switch (cmd.kind) {
      case 'invalid':
        return { reply: notice(cmd.message) };
      case 'help':
        return { reply: { kind: 'workflows', intro: 'Tollgate runs workflows durably and keeps this channel posted.', workflows: workflows() } };
      case 'workflows':
        return { reply: { kind: 'workflows', intro: null, workflows: workflows() } };
      case 'text':
        return {
          reply: notice(
            'I only understand commands for now (no model is configured for free text). To start something, write `run <workflow> key=value …`, e.g. `run demo name=Ada`; `help` lists the workflows.',
          ),
        };
      case 'approvals':
        return { reply: { kind: 'approvals', approvals: (await listPendingApprovals(q, actor)).map(toApprovalView) } };
      case 'runs':
        return { reply: { kind: 'runs', title: 'Your recent runs', runs: (await listRunsRequestedBy(q, actor, 10)).map(toRunSummary) } };
      case 'status': {
        // The runtime decides who may see a run (its tenant, approvers, operators); anyone else is
        // answered as if it did not exist.
        const visible = await this.#o.runtime.readRun(cmd.runId, actor, q).then(
          () => true,
          (e: unknown) => {
            if (e instanceof TollgateError && e.code === 'TG_RUN_NOT_FOUND') return false;
            throw e;
          },
        );
        const view = visible ? await loadRunMessageView(q, cmd.runId) : undefined;
        return { reply: view ? { kind: 'run-status', run: view } : notice(`No run with id \`${cmd.runId}\`. \`runs\` lists yours.`) };
      }
      case 'retry':
      case 'cancel':
        return { reply: notice((await this.#operate(q, cmd.kind, cmd.runId, actor)).text) };
      case 'run': {
        // A valid run command is recorded by #command's grouped write and never comes here.
        const checked = this.#checkRun(cmd);
        return { reply: 'reply' in checked ? checked.reply : notice('This run was not started; send the command again.') };
      }
    }
  }

  /** The workflow and checked input of a `run` command, or the reply saying why it cannot start. */
  #checkRun(cmd: Extract<Command, { kind: 'run' }>): { def: WorkflowDefinition; input: unknown } | { reply: ChatReply } {
    const def = this.workflow(cmd.workflow);
    if (!def) return { reply: this.unknownWorkflow(cmd.workflow) };
    const checked = this.checkInput(def, cmd.params);
    if (!checked.ok) return { reply: this.invalidParams(def, checked.error, cmd.params) };
    return { def, input: checked.input };
  }

  /**
   * Retry or cancel. Whether this actor may is the runtime's decision (the requester or an
   * operator); refusals and state errors change nothing and are reported back (the caller decides
   * how: explanation, reply or ack text).
   */
  async #operate(q: Queryable, kind: 'retry' | 'cancel', runId: string, actor: Principal): Promise<{ ok: boolean; text: string }> {
    await q.query('SAVEPOINT chat_operate');
    try {
      const opts = { client: q, via: actor.platform };
      if (kind === 'retry') await this.#o.runtime.retry(runId, actor, opts);
      else await this.#o.runtime.cancel(runId, actor, opts);
      await q.query('RELEASE SAVEPOINT chat_operate');
      return { ok: true, text: kind === 'retry' ? `Retrying \`${runId}\` from the step that failed.` : `Cancelling \`${runId}\`.` };
    } catch (e) {
      await q.query('ROLLBACK TO SAVEPOINT chat_operate');
      if (e instanceof TollgateError && e.code === 'TG_RUN_NOT_FOUND') return { ok: false, text: `No run with id \`${runId}\`.` };
      if (e instanceof TollgateError) return { ok: false, text: e.message };
      throw e;
    }
  }

  #platform(name: string): ChatPlatform {
    const p = this.#o.platforms.get(name);
    if (!p) throw new TollgateError('TG_CONFIG_INVALID', `Chat platform "${name}" is not registered in this process.`);
    return p;
  }
}

/** The run's origin for a chat request: the platform and tenant of the actor, the place it was asked in. */
export function originOf(actor: Principal, where: Where | null): ChatOrigin {
  return { platform: actor.platform, tenant: where?.tenant ?? actor.tenant, conversation: where?.conversation ?? null, thread: where?.thread ?? null };
}
