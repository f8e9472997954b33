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
 * model in the worker (`#understand`, src/chat/understand.ts); what it understood becomes a
 * proposal that only its asker's Confirm turns into a run (ARCHITECTURE.md, "The path of a
 * free-text request").
 *
 * The work is split by intent kind under intake/: command.ts (commands), start.ts (run starts
 * and forms), decide.ts (decisions), operate.ts (Retry, Cancel), proposals.ts (free text and
 * Confirm), carry-out.ts (what the worker carries out after the ack); types.ts holds the intents,
 * context.ts what they share. `ChatCore` is their one door.
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
import type { z } from 'zod';
import { getApproval } from '../approvals/index.ts';
import { eligibility, type Eligibility } from '../approvals/eligibility.ts';
import { formatPrincipal, type Principal } from '../common/principals.ts';
import type { Queryable } from '../db/queryable.ts';
import { withTransaction } from '../db/transaction.ts';
import type { WorkflowDefinition } from '../runtime/workflow.ts';
import { toApprovalView, type ApprovalView } from '../views/approval-view.ts';
import { remember, teamsDirectory, type TeamsDirectory } from './directory.ts';
import { carryOut, type CarryOutOptions } from './intake/carry-out.ts';
import type { HeldAdvance } from '../db/queries/advance-hold.ts';
import { submitCommand } from './intake/command.ts';
import { createIntake, type Intake } from './intake/context.ts';
import { submitDecide } from './intake/decide.ts';
import { checkInput, invalidParams, unknownWorkflow } from './intake/forms.ts';
import { submitOperate } from './intake/operate.ts';
import { editForm, previewEdit, resolveForm, submitAmend, type EditForm, type Refusable, type ResolveForm } from './intake/amend.ts';
import { proposalForm, proposalView, submitConfirm } from './intake/proposals.ts';
import { answerIfOutdated, type ClickTarget } from './intake/stale.ts';
import { submitStart } from './intake/start.ts';
import type { ChatCoreOptions, DeliveryKey, Intent, Shown, SubmitResult } from './intake/types.ts';
import { type Where } from './outbox.ts';
import { claimDeliveryKey, enqueueHomeDelivery } from '../db/queries/chat-outbox.ts';
import type { ChatView } from './platform.ts';
import type { ChatReply } from './replies.ts';
import { viewForViewer, type ViewedMessage } from './viewer.ts';
import { tenantGate } from './tenants.ts';
import { rememberName, type NameSource } from './people.ts';

export {
  parseChatCommand,
  type CarryOut,
  type ChatCommand,
  type ChatCoreOptions,
  type DeferredIntent,
  type DeliveryKey,
  type Intent,
  type SubmitResult,
} from './intake/types.ts';
export { originOf } from './intake/forms.ts';

export class ChatCore {
  readonly #ix: Intake;
  /** Where Teams people can be reached, for the Teams platform's deliveries. */
  readonly teamsDirectory: TeamsDirectory;

  constructor(o: ChatCoreOptions) {
    this.#ix = createIntake(o);
    this.teamsDirectory = teamsDirectory(o.pool);
    this.tenantAllowed = tenantGate(o.tenants ?? [], o.log.child({ component: 'tenants' }));
  }

  /**
   * Whether a request from this platform's tenant (Slack workspace or enterprise, Microsoft tenant)
   * may come in: the project's `tenants` list, empty for all. A refusal is logged here, naming the
   * tenant; the adapter answers at its door and records nothing (src/chat/tenants.ts).
   */
  readonly tenantAllowed: (platform: string, tenant: string | null | undefined) => boolean;

  /** How many grouped writes carried how many intents so far (tests and the bench). */
  groupStats(): { starts: { batches: number; items: number }; deferred: { batches: number; items: number } } {
    return { starts: this.#ix.starts.stats(), deferred: this.#ix.deferred.stats() };
  }

  async submit(intent: Intent): Promise<SubmitResult> {
    const ix = this.#ix;
    switch (intent.kind) {
      case 'command':
        return submitCommand(ix, intent);
      case 'start':
        return submitStart(ix, intent);
      case 'operate':
        return submitOperate(ix, intent);
      case 'decide':
        return submitDecide(ix, intent);
      case 'confirm':
        return submitConfirm(ix, intent);
      case 'amend':
        return submitAmend(ix, intent);
      case 'introduce':
        await remember(ix.o.pool, intent.remember);
        return { duplicate: false };
    }
  }

  /**
   * Carries out a click recorded with `carryOut: 'after-ack'` (the worker's `chat-intent` job),
   * in one transaction with its explanation (intake/carry-out.ts).
   */
  carryOut(payload: unknown, opts?: CarryOutOptions): Promise<HeldAdvance | undefined> {
    return carryOut(this.#ix, payload, opts);
  }

  /** Records a one-off explanation for one person, through the outbox (no-op without a place to say it). */
  explain(actor: Principal, at: Where | null, text: string, q?: Queryable): Promise<void> {
    return this.#ix.explain(actor, at, text, q);
  }

  /** Schedules a refresh of a person's home page (they opened it), deduplicated by the platform's key. */
  async openHome(actor: Principal, key: DeliveryKey): Promise<void> {
    await withTransaction(this.#ix.o.pool, async (q) => {
      if (!(await claimDeliveryKey(q, actor.platform, key.key, key.kind))) return;
      await enqueueHomeDelivery(q, actor);
    });
  }

  /**
   * The message a click was made on, as it is now (the card a platform answers a click with and
   * draws for the clicker with `eligibilityOnView`, viewer.ts).
   */
  viewOf(message: ViewedMessage): Promise<ChatView | undefined> {
    return viewForViewer(this.#ix.o.pool, message);
  }

  /**
   * May this person decide this approval now, and if not why (the one eligibility rule): asked
   * before a form is shown (Slack's reject reason) so nobody fills one in for nothing. `decide`
   * stays the authority when the decision arrives.
   */
  async eligibility(actor: Principal, approvalId: string, decision: 'approve' | 'reject'): Promise<{ eligibility: Eligibility; approval?: ApprovalView }> {
    const a = await getApproval(this.#ix.o.pool, approvalId);
    return { eligibility: eligibility(a, approvalId, formatPrincipal(actor), decision), ...(a ? { approval: toApprovalView(a) } : {}) };
  }

  /**
   * Keeps what a person is called (people by name, src/chat/people.ts): from a platform, or from
   * the OpenID Connect profile at sign-in (`source: 'oidc'`). Written only when it changed; never
   * used to authorise.
   */
  rememberName(principal: Principal | string, name: string | null | undefined, source: NameSource): Promise<void> {
    return rememberName(this.#ix.o.pool, principal, name, source);
  }

  /**
   * Before a form is shown for a click (Slack's reject reason): if the click was made on an
   * outdated copy whose action no longer holds (intake/stale.ts), answers the clicker at
   * `explainAt`, redraws the copies and returns true, so nobody fills in a form for nothing. The
   * submitted form is checked again when it is carried out.
   */
  async answeredAsOutdated(click: { target: ClickTarget; actor: Principal; shown: Shown | undefined; explainAt: Where | null }): Promise<boolean> {
    if (!click.shown) return false;
    return withTransaction(this.#ix.o.pool, async (q) => (await answerIfOutdated(this.#ix, q, click)) !== undefined);
  }

  /** The workflow, or undefined when no such name (and version) is registered. */
  workflow(name: string, version?: number): WorkflowDefinition | undefined {
    return this.#ix.workflow(name, version);
  }

  /** Validates text values for a workflow with its own schema (what `startRun` would check). */
  checkInput(def: WorkflowDefinition, values: Record<string, string | undefined>): { ok: true; input: unknown } | { ok: false; error: z.ZodError } {
    return checkInput(def, values);
  }

  /** The reply for a workflow that cannot start with these values (schema issues, or field errors by name). */
  invalidParams(
    def: WorkflowDefinition,
    error: z.ZodError | Record<string, string>,
    given: Record<string, string>,
  ): Extract<ChatReply, { kind: 'invalid-params' }> {
    return invalidParams(def, error, given);
  }

  unknownWorkflow(name: string): ChatReply {
    return unknownWorkflow(this.#ix, name);
  }

  /** The view of a stored proposal (Teams redraws it for the clicker), or undefined when unknown. */
  proposalView(proposalId: string, q?: Queryable): Promise<ChatView | undefined> {
    return proposalView(this.#ix, proposalId, q);
  }

  /**
   * Edit: the workflow and the text values to prefill its form with, or undefined for an unknown
   * proposal. Anyone may open it: a submitted form starts a run as whoever submits it, like any form.
   */
  proposalForm(proposalId: string): Promise<{ def: WorkflowDefinition; given: Record<string, string>; where: Where } | undefined> {
    return proposalForm(this.#ix, proposalId);
  }

  /**
   * Edit and retry: the workflow's form prefilled with the run's input, if `actor` may edit and
   * retry this run (the requester or an operator, a retryable failed run); else why not.
   */
  editForm(runId: string, actor: Principal): Promise<Refusable<{ form: EditForm }>> {
    return editForm(this.#ix, runId, actor);
  }

  /** What Edit and retry with these values will run again and undo, said before confirming; or the field errors. Records nothing. */
  previewEdit(
    runId: string,
    actor: Principal,
    values: Record<string, string | undefined>,
  ): Promise<Refusable<{ summary: string; values: Record<string, string> }>> {
    return previewEdit(this.#ix, runId, actor, values);
  }

  /** Resolve by hand: the failed step and the resolutions its workflow allows, if `actor` (an operator) may; else why not. */
  resolveForm(runId: string, actor: Principal): Promise<Refusable<{ form: ResolveForm }>> {
    return resolveForm(this.#ix, runId, actor);
  }
}
