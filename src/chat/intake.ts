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
 * Free text in a mention or DM (`understand: true`) is recorded the same way and read by the
 * model in the worker (`#understand`, src/intents/understand.ts); what it understood becomes a
 * proposal that only its asker's Confirm turns into a run (ARCHITECTURE.md, "The path of a
 * free-text request").
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
import { getApproval, listPendingApprovals, observeDecided } from '../approvals/index.ts';
import { eligibility, type Eligibility } from '../approvals/eligibility.ts';
import type { DecideOutcome } from '../approvals/types.ts';
import { withRetriedTransaction, withTransaction } from '../db/transaction.ts';
import { TollgateError } from '../common/errors.ts';
import { CommandSyntaxError, parseCommand, type Command } from '../intents/command.ts';
import { understandRequest, type Understanding } from '../intents/understand.ts';
import type { Logger } from '../common/log.ts';
import { isModelCallError } from '../model/errors.ts';
import { recordModelCall } from '../model/record.ts';
import type { ModelCallRecord, ModelClient } from '../model/types.ts';
import { formatPrincipal, principalSchema, samePrincipal, type Principal } from '../common/principals.ts';
import type { Queryable } from '../db/queryable.ts';
import { runOriginSchema, type ChatOrigin } from '../runtime/origin.ts';
import type { WorkflowRegistry } from '../runtime/registry.ts';
import { printable } from '../runtime/run-input.ts';
import type { PreparedRun, Runtime } from '../runtime/runtime.ts';
import type { WorkflowDefinition } from '../runtime/workflow.ts';
import { loadRunMessageView, toApprovalView, type ApprovalView } from '../views/approval-view.ts';
import { checkFormValues, describeForm, describeInputs, fieldErrors } from '../views/form.ts';
import { orderedParams, type ProposalView } from '../views/proposal-view.ts';
import { listRunsRequestedBy } from '../views/run-view.ts';
import { GroupCommit } from '../db/group-commit.ts';
import { addReply, claimDeliveryKey, enqueueHomeDelivery, replaceReply, whereSchema, type Where } from './outbox.ts';
import { getProposal, insertProposal, markProposalConfirmed, setProposalMessage, type ProposalRow } from './proposals.ts';
import { writeDeferredIntents, writeRunStarts, type DeferredWrite, type RunStartWrite } from './intake-writes.ts';
import type { ChatPlatform, ChatView } from './platform.ts';
import { notice, type ChatReply } from './replies.ts';
import { remember, teamsDirectory, type TeamsDirectory, type TeamsSeen } from './directory.ts';
import { ALREADY_RECORDED, PROPOSAL_UNKNOWN, REJECT_REASON_REQUIRED, startedSentence } from './sentences.ts';
import { viewForViewer, type DecisionRights, type ViewedMessage } from './viewer.ts';
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

export type Intent = (
  /**
   * A command from a slash command, a mention or a DM. `where` is where the run's message goes.
   * `understand`: free text (`command.kind === 'text'`) goes to the model, when one is configured
   * (mentions and DMs set it; a slash command never does: its grammar never calls the model).
   */
  | { kind: 'command'; command: ChatCommand; actor: Principal; where: Where | null; key?: DeliveryKey; replyVia: 'return' | 'outbox'; carryOut?: CarryOut; understand?: boolean }
  /** A form submission that starts a workflow with these (text) values. */
  | { kind: 'start'; workflow: string; version?: number; values: Record<string, string | undefined>; actor: Principal; where: Where | null; key: DeliveryKey; carryOut?: CarryOut }
  /** A Retry or Cancel button. Refusals are explained to the actor at `explainAt`. */
  | { kind: 'operate'; action: 'retry' | 'cancel'; runId: string; actor: Principal; key: DeliveryKey; explainAt: Where | null; carryOut?: CarryOut }
  /** An approval decision. Anything but a recorded decision is explained to the actor at `explainAt`. */
  | { kind: 'decide'; approvalId: string; decision: 'approve' | 'reject'; comment?: string; actor: Principal; explainAt: Where | null; carryOut?: CarryOut }
  /** Confirm under a proposal (a free-text request understood): starts its run, once; only the asker may. */
  | { kind: 'confirm'; proposalId: string; actor: Principal; key: DeliveryKey; explainAt: Where | null; carryOut?: CarryOut }
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
}

export interface ChatCoreOptions {
  pool: pg.Pool;
  runtime: Runtime;
  registry: WorkflowRegistry;
  platforms: ReadonlyMap<string, ChatPlatform>;
  log: Logger;
  /** The model that reads free text (src/model/client.ts); without one, or not configured, free text is answered with the `run` form. */
  model?: ModelClient | undefined;
}

export class ChatCore {
  readonly #o: ChatCoreOptions;
  readonly #starts: GroupCommit<RunStartWrite & Noted, boolean>;
  readonly #deferred: GroupCommit<DeferredWrite & Noted, boolean>;
  /** Where Teams people can be reached, for the Teams platform's deliveries. */
  readonly teamsDirectory: TeamsDirectory;

  constructor(o: ChatCoreOptions) {
    this.#o = o;
    // One statement per write: atomic on its own, so the pool runs it without a transaction
    // (unless an item carries a directory note: then one transaction holds both).
    this.#starts = new GroupCommit({ name: 'run starts', log: o.log, write: noting<RunStartWrite & Noted>(o.pool, writeRunStarts) });
    this.#deferred = new GroupCommit({ name: 'deferred clicks', log: o.log, write: noting<DeferredWrite & Noted>(o.pool, writeDeferredIntents) });
    this.teamsDirectory = teamsDirectory(o.pool);
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
      case 'confirm':
        return this.#confirmIntent(intent);
      case 'introduce':
        await remember(this.#o.pool, intent.remember);
        return { duplicate: false };
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

  /**
   * A message as one person sees it (the card a platform answers a click with), and what they may
   * decide on it, by the one eligibility rule (viewer.ts).
   */
  viewFor(viewer: Principal, message: ViewedMessage): Promise<{ view: ChatView | undefined; rights: DecisionRights }> {
    return viewForViewer(this.#o.pool, message, viewer);
  }

  /**
   * May this person decide this approval now, and if not why (the one eligibility rule): asked
   * before a form is shown (Slack's reject reason) so nobody fills one in for nothing. `decide`
   * stays the authority when the decision arrives.
   */
  async eligibility(actor: Principal, approvalId: string, decision: 'approve' | 'reject'): Promise<{ eligibility: Eligibility; approval?: ApprovalView }> {
    const a = await getApproval(this.#o.pool, approvalId);
    return { eligibility: eligibility(a, approvalId, formatPrincipal(actor), decision), ...(a ? { approval: toApprovalView(a) } : {}) };
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
    return checkFormValues(def.input, values);
  }

  /** The reply for a workflow that cannot start with these values (schema issues, or field errors by name). */
  invalidParams(def: WorkflowDefinition, error: z.ZodError | Record<string, string>, given: Record<string, string>): Extract<ChatReply, { kind: 'invalid-params' }> {
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
      const run = await this.#recordStart(valid.def, valid.input, actor, where, key, intent.carryOut, intent.remember);
      if (!run) return { duplicate: true, reply: notice(ALREADY_RECORDED) };
      return { duplicate: false, runId: run.id, reply: notice(startedSentence(run, where)) };
    }
    if (command.kind === 'text' && intent.understand && where && this.#o.model?.configured) {
      // Recorded, acknowledged, and read by the model in the worker: the ack never waits for a model.
      const payload: DeferredIntent = { kind: 'understand', text: command.text, actor, where };
      const recorded = await this.#deferred.submit({ ...(key ? { key: { platform: actor.platform, ...key } } : {}), payload, remember: intent.remember });
      return { duplicate: !recorded };
    }
    // Only commands that change something need to be recognised when re-sent, unless the reply
    // itself goes through the outbox (a mention's reply must not be posted twice).
    const changes = command.kind === 'retry' || command.kind === 'cancel' || intent.replyVia === 'outbox';
    return withTransaction(this.#o.pool, async (q) => {
      await remember(q, intent.remember);
      if (key && changes && !(await claimDeliveryKey(q, actor.platform, key.key, key.kind))) {
        return { duplicate: true, reply: notice(ALREADY_RECORDED) };
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
    if (!def) {
      await remember(this.#o.pool, intent.remember);
      return { duplicate: false, reply: this.unknownWorkflow(intent.workflow) };
    }
    const checked = this.checkInput(def, intent.values);
    if (!checked.ok) {
      await remember(this.#o.pool, intent.remember);
      // The form again, with each error under its field; nothing is recorded.
      const errors = fieldErrors(checked.error);
      const given = Object.fromEntries(Object.entries(intent.values).filter((e): e is [string, string] => e[1] !== undefined));
      return { duplicate: false, fieldErrors: errors, reply: this.invalidParams(def, errors, given) };
    }
    const run = await this.#recordStart(def, checked.input, intent.actor, intent.where, intent.key, intent.carryOut, intent.remember);
    return run ? { duplicate: false, runId: run.id, reply: notice(startedSentence(run, intent.where)) } : { duplicate: true, reply: notice(ALREADY_RECORDED) };
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
    note?: TeamsSeen,
  ): Promise<PreparedRun | undefined> {
    const run = this.#o.runtime.prepareRun({ workflow: def.name, version: def.version, input, requester: actor, origin: originOf(actor, where) });
    const keyOf = { ...(key ? { key: { platform: actor.platform, ...key } } : {}), remember: note };
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
      const recorded = await this.#deferred.submit({ key: { platform: intent.actor.platform, ...intent.key }, payload, remember: intent.remember });
      return { duplicate: !recorded, runId: intent.runId };
    }
    return withTransaction(this.#o.pool, async (q) => {
      await remember(q, intent.remember);
      if (!(await claimDeliveryKey(q, intent.actor.platform, intent.key.key, intent.key.kind))) return { duplicate: true };
      const outcome = await this.#operate(q, intent.action, intent.runId, intent.actor);
      // The refusal is recorded with the click and explained after the ack, through the outbox.
      if (!outcome.ok) await this.explain(intent.actor, intent.explainAt, outcome.text, q);
      return { duplicate: false, runId: intent.runId, reply: notice(outcome.text) };
    });
  }

  async #decide(intent: Extract<Intent, { kind: 'decide' }>): Promise<SubmitResult> {
    // A rejection tells the requester why: without a reason nothing is recorded, on any platform.
    if (intent.decision === 'reject' && !intent.comment?.trim()) {
      await remember(this.#o.pool, intent.remember);
      return { duplicate: false, fieldErrors: { comment: REJECT_REASON_REQUIRED } };
    }
    // A repeated decision is a no-op answered "already recorded", so decisions need no delivery key.
    if (intent.carryOut === 'after-ack' && intent.explainAt) {
      const { approvalId, decision, comment, actor, explainAt } = intent;
      const payload: DeferredIntent = { kind: 'decide', approvalId, decision, ...(comment !== undefined ? { comment } : {}), actor, explainAt };
      await this.#deferred.submit({ payload, remember: intent.remember });
      return { duplicate: false };
    }
    // Decided now, in one transaction with what the activity said of where people are and the
    // explanation of anything but a recorded decision.
    const via = intent.explainAt?.platform ?? intent.actor.platform;
    const outcome = await withRetriedTransaction(this.#o.pool, async (q) => {
      await remember(q, intent.remember);
      const o = await this.#o.runtime.decideWithin(q, intent.approvalId, intent.actor, intent.decision, intent.comment, { via });
      if (o.kind !== 'recorded') await this.explain(intent.actor, intent.explainAt, o.message, q);
      return o;
    });
    observeDecided(outcome);
    // The state after commit, so the adapter renders what others will see.
    const approval = await getApproval(this.#o.pool, intent.approvalId);
    return { duplicate: false, decided: approval ? { ...outcome, approval } : outcome };
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
    // The model is asked outside any transaction: nothing is locked while it thinks.
    if (intent.kind === 'understand') return this.#understand(intent);
    let decided: DecideOutcome | undefined;
    await withRetriedTransaction(this.#o.pool, async (q) => {
      decided = undefined; // a retried transaction decides again
      if (intent.kind === 'start') {
        // Written again after a crash, the run already exists and nothing is written twice.
        const [created] = await writeRunStarts(q, [{ run: intent.run, message: intent.where }]);
        if (created) this.#o.log.info({ runId: intent.run.id, workflow: intent.run.workflow, version: intent.run.version }, 'run queued');
        return;
      }
      if (intent.kind === 'decide') {
        const outcome = await this.#o.runtime.decideWithin(q, intent.approvalId, intent.actor, intent.decision, intent.comment, { via: intent.explainAt.platform });
        if (outcome.kind !== 'recorded') await this.explain(intent.actor, intent.explainAt, outcome.message, q);
        decided = outcome;
        return;
      }
      if (intent.kind === 'confirm') {
        const outcome = await this.#confirm(q, intent.proposalId, intent.actor);
        if (!outcome.ok) await this.explain(intent.actor, intent.explainAt, outcome.text, q);
        return;
      }
      const outcome = await this.#operate(q, intent.action, intent.runId, intent.actor);
      if (!outcome.ok) await this.explain(intent.actor, intent.explainAt, outcome.text, q);
    });
    if (decided) observeDecided(decided);
  }

  // ----- free text and proposals ----------------------------------------------------------------

  /**
   * A free-text request, carried out by the worker: the model reads it (src/intents/understand.ts),
   * and the person is answered in the thread, in one transaction with the call's record: a
   * question, the form with what is missing, or a proposal with Confirm and Edit. Nothing starts
   * here. A model that fails or times out is answered too, never thrown: retrying the job would
   * only make the person wait longer for the same answer.
   */
  async #understand(intent: Extract<DeferredIntent, { kind: 'understand' }>): Promise<void> {
    const { text, actor, where } = intent;
    const model = this.#o.model;
    let understood: Understanding | undefined;
    let failed: { message: string; record: ModelCallRecord | null } | undefined;
    if (!model?.configured) {
      failed = { message: 'No model is configured to read free text here.', record: null };
    } else {
      try {
        understood = await understandRequest(model, this.#o.registry.latest(), text, { log: this.#o.log });
      } catch (e) {
        const record = modelCallRecordOf(e);
        if (record) this.#o.log.warn({ code: (e as TollgateError).code, err: (e as Error).message }, 'the model could not read a free-text request; the person is told');
        else this.#o.log.error({ err: e }, 'reading a free-text request failed unexpectedly; the person is told');
        failed = { message: record ? (e as Error).message : 'Something went wrong while reading your request.', record };
      }
    }
    await withRetriedTransaction(this.#o.pool, async (q) => {
      const platform = this.#platform(where.platform);
      if (failed || !understood) {
        const why = failed?.message ?? 'Your request could not be read.';
        await addReply(q, where, platform.render(notice(`${why} Nothing was started. You can write it as a command instead: ${RUN_FORM_HINT}`)));
        if (failed?.record) await recordModelCall(q, { runId: null, stepIdx: null, actor, context: { intent: 'failed' } }, failed.record);
        return;
      }
      const u = understood;
      if (u.kind === 'ask') {
        await addReply(q, where, platform.render(notice(`${u.question}\nNothing was started. You can also write it as a command: ${RUN_FORM_HINT}`)));
        await recordModelCall(q, { runId: null, stepIdx: null, actor, context: { intent: 'ask' } }, u.record);
        return;
      }
      const def = this.workflow(u.workflow, u.version);
      if (!def) throw new Error(`workflow ${u.workflow} v${u.version} was understood but is not registered`); // understandRequest only names registered ones
      if (u.kind === 'missing') {
        await addReply(q, where, platform.render(this.#missingReply(def, u)));
        await recordModelCall(q, { runId: null, stepIdx: null, actor, context: { intent: 'missing', workflow: def.name, missing: u.missing } }, u.record);
        return;
      }
      const proposalId = await insertProposal(q, { workflow: def.name, version: def.version, input: u.input, params: u.given, asker: actor, place: where });
      const view = this.#proposalView(def, { id: proposalId, params: u.given, asker: actor, runId: null });
      const messageId = await addReply(q, where, platform.render({ kind: 'proposal', proposal: view }));
      await setProposalMessage(q, proposalId, messageId);
      await recordModelCall(q, { runId: null, stepIdx: null, actor, context: { intent: 'proposal', proposalId } }, u.record);
      this.#o.log.info({ proposalId, workflow: def.name, version: def.version }, 'a free-text request was understood; waiting for Confirm');
    });
  }

  /** What a free-text request still needs: the workflow's form, prefilled with what was given, the missing fields named. */
  #missingReply(def: WorkflowDefinition, u: Extract<Understanding, { kind: 'missing' }>): ChatReply {
    const fields = describeForm(def.input);
    const errors: Record<string, string> = {};
    for (const name of u.missing) {
      const description = fields.find((f) => f.name === name)?.description;
      errors[name] = description ? `not given (${description})` : 'not given';
    }
    Object.assign(errors, u.invalid);
    const needed = [...u.missing, ...Object.keys(u.invalid).filter((k) => k !== '' && !u.missing.includes(k))];
    const list = needed.map((n) => `*${printable(n)}*`).join(', ');
    return {
      ...this.invalidParams(def, errors, u.given),
      intro: `To start *${def.name}* I still need ${list || 'a few more details'}. Nothing was started: fill in the form, or ask again with everything it needs.`,
    };
  }

  #proposalView(def: WorkflowDefinition, p: Pick<ProposalRow, 'id' | 'params' | 'asker' | 'runId'>): ProposalView {
    return {
      id: p.id,
      workflow: def.name,
      version: def.version,
      description: def.description,
      params: orderedParams(describeForm(def.input), p.params).map(({ name, value }) => ({ name: printable(name), value: printable(value) })),
      asker: p.asker,
      runId: p.runId,
    };
  }

  /** The view of a stored proposal (Teams redraws it for the clicker), or undefined when unknown. */
  async proposalView(proposalId: string, q: Queryable = this.#o.pool): Promise<ChatView | undefined> {
    const p = await getProposal(q, proposalId);
    const def = p ? this.workflow(p.workflow, p.version) : undefined;
    return p && def ? { kind: 'proposal', proposal: this.#proposalView(def, p) } : undefined;
  }

  /**
   * Edit: the workflow and the text values to prefill its form with, or undefined for an unknown
   * proposal. Anyone may open it: a submitted form starts a run as whoever submits it, like any form.
   */
  async proposalForm(proposalId: string): Promise<{ def: WorkflowDefinition; given: Record<string, string>; where: Where } | undefined> {
    const p = await getProposal(this.#o.pool, proposalId);
    const def = p ? (this.workflow(p.workflow, p.version) ?? this.workflow(p.workflow)) : undefined;
    return p && def ? { def, given: p.params, where: p.place } : undefined;
  }

  async #confirmIntent(intent: Extract<Intent, { kind: 'confirm' }>): Promise<SubmitResult> {
    if (intent.carryOut === 'after-ack' && intent.explainAt) {
      const payload: DeferredIntent = { kind: 'confirm', proposalId: intent.proposalId, actor: intent.actor, explainAt: intent.explainAt };
      const recorded = await this.#deferred.submit({ key: { platform: intent.actor.platform, ...intent.key }, payload, remember: intent.remember });
      return { duplicate: !recorded };
    }
    return withTransaction(this.#o.pool, async (q) => {
      await remember(q, intent.remember);
      if (!(await claimDeliveryKey(q, intent.actor.platform, intent.key.key, intent.key.kind))) return { duplicate: true, reply: notice(ALREADY_RECORDED) };
      const outcome = await this.#confirm(q, intent.proposalId, intent.actor);
      if (!outcome.ok) await this.explain(intent.actor, intent.explainAt, outcome.text, q);
      return { duplicate: false, reply: notice(outcome.text), ...(outcome.runId ? { runId: outcome.runId } : {}) };
    });
  }

  /**
   * Confirm: the proposal is locked, so two clicks are carried out one after the other and the
   * second finds the run the first started. Only the person who asked may confirm; the parameters
   * are checked again with the workflow's schema, exactly as a form start is, and the run is
   * created with its live message where the request was made, in this transaction.
   */
  async #confirm(q: Queryable, proposalId: string, actor: Principal): Promise<{ ok: boolean; text: string; runId?: string }> {
    const p = await getProposal(q, proposalId, { lock: true });
    if (!p) return { ok: false, text: PROPOSAL_UNKNOWN };
    if (!samePrincipal(p.asker, actor)) {
      return { ok: false, text: `Only the person who asked can confirm this. To start *${p.workflow}* yourself, press *Edit* and submit the form, or write \`run ${p.workflow} key=value …\`.` };
    }
    if (p.runId) return { ok: false, text: `Already confirmed: it started as \`${p.runId}\`.`, runId: p.runId };
    const def = this.workflow(p.workflow, p.version);
    if (!def) return { ok: false, text: `*${p.workflow}* v${p.version} is no longer registered, so nothing was started; ask again.` };
    const checked = this.checkInput(def, p.params);
    if (!checked.ok) {
      const errs = Object.entries(fieldErrors(checked.error)).map(([k, m]) => (k ? `${printable(k)}: ${m}` : m));
      return { ok: false, text: `*${def.name}* does not accept these parameters (${errs.join('; ')}), so nothing was started; press *Edit* to correct them.` };
    }
    const run = this.#o.runtime.prepareRun({ workflow: def.name, version: def.version, input: checked.input, requester: actor, origin: originOf(actor, p.place) });
    await writeRunStarts(q, [{ run, message: p.place }]);
    await markProposalConfirmed(q, p.id, run.id);
    if (p.messageId) {
      // The proposal's message is drawn again: confirmed, with its run, and no buttons.
      const view = this.#proposalView(def, { ...p, runId: run.id });
      await replaceReply(q, p.messageId, this.#platform(p.place.platform).render({ kind: 'proposal', proposal: view }));
    }
    this.#o.log.info({ proposalId: p.id, runId: run.id, workflow: run.workflow, version: run.version }, 'proposal confirmed; run queued');
    return { ok: true, text: `Started *${def.name}* v${def.version} as \`${run.id}\`.`, runId: run.id };
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
            this.#o.model?.configured
              ? // A slash command (or a request with no place to answer in): its grammar never calls the model.
                `Commands take the command grammar only: write ${RUN_FORM_HINT} To ask in your own words, mention me or write to me directly.`
              : `I only understand commands for now (no model is configured for free text). To start something, write ${RUN_FORM_HINT}`,
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

/** A grouped write's item may carry what its activity said of where people are (directory.ts). */
interface Noted {
  remember?: TeamsSeen | undefined;
}

/**
 * A grouped write that also records its items' directory notes: the write alone when none has
 * one (one statement, atomic on its own), else both in one transaction.
 */
function noting<I extends Noted>(pool: pg.Pool, write: (q: Queryable, items: I[]) => Promise<boolean[]>): (items: I[]) => Promise<boolean[]> {
  return async (items) => {
    const notes = items.flatMap((i) => (i.remember ? [i.remember] : []));
    if (notes.length === 0) return write(pool, items);
    return withTransaction(pool, async (q) => {
      const written = await write(q, items);
      for (const n of notes) await remember(q, n);
      return written;
    });
  };
}

/** How to start something without the model, said wherever free text cannot be read. */
const RUN_FORM_HINT = '`run <workflow> key=value …`, e.g. `run demo name=Ada`; `help` lists the workflows.';

/** The record a failed model call carries (`ModelCallError`), or null for any other error. */
function modelCallRecordOf(e: unknown): ModelCallRecord | null {
  return isModelCallError(e) ? e.record : null;
}

/** The run's origin for a chat request: the platform and tenant of the actor, the place it was asked in. */
export function originOf(actor: Principal, where: Where | null): ChatOrigin {
  return { platform: actor.platform, tenant: where?.tenant ?? actor.tenant, conversation: where?.conversation ?? null, thread: where?.thread ?? null };
}
