/**
 * The runtime's public face for adapters, the CLI and tests: start a run, cancel it, retry it
 * from its failed step, read it. Every change is one transaction that writes the state, its
 * event and the job that acts on it, so a request acknowledged to a person is never lost.
 *
 * The runtime never talks to Slack or Teams; it knows principals and ids only.
 *
 * It is also the one place that authorises: cancel and retry (the requester or an operator),
 * decisions (the approval's policy) and reads for a person (`readRun`, scoped by tenant), with the
 * rules of src/intents/authorize.ts and src/approvals/policy.ts. Adapters and the CLI hand it the
 * verified principal and never check on their own. A `null` actor is Tollgate itself (internal
 * jobs and tests), which no request from a person can produce.
 */
import type pg from 'pg';
import { withRetriedTransaction } from '../db/transaction.ts';
import type { Queryable } from '../db/queryable.ts';
import { TollgateError } from '../common/errors.ts';
import { describeIssues } from './zod-issues.ts';
import { checkRunInput } from './run-input.ts';
import { newId } from '../common/ids.ts';
import type { Logger } from '../common/log.ts';
import { formatPrincipal, type Principal } from '../common/principals.ts';
import { EMPTY_PROJECT_CONFIG, type ProjectConfig } from '../config/project-config.ts';
import { decide as decideApproval, decideWithin as decideApprovalWithin, type DecideOptions } from '../approvals/decide.ts';
import type { DecideOutcome } from '../approvals/types.ts';
import { runOriginSchema, type RunOrigin } from './origin.ts';
import { isOperator, mayOperateRun, mayReadRun } from '../intents/authorize.ts';
import { checkByHandOutput, checkReason, editedInput, heldFor, invalidEdit, planEdit, rewindOf, type EditPlan, type Resolution } from './amend.ts';
import { clearHeld, giveUpRun, type HeldStep, requeueEdited, requeueToCompensate, resolveStepByHand } from '../db/queries/rerun.ts';
import { builtinToolRegistry } from '../tools/index.ts';

/** The origin as given, if it is one of the shapes of src/runtime/origin.ts; a clear error otherwise. */
function checkOrigin(origin: unknown): RunOrigin {
  const parsed = runOriginSchema.safeParse(origin);
  if (parsed.success) return parsed.data;
  throw new TollgateError(
    'TG_ORIGIN_INVALID',
    `The run's origin ${JSON.stringify(origin)} is not one Tollgate knows: give {"platform": "cli"} or {"platform", "tenant", "conversation", "thread"} for a chat.`,
    { origin },
  );
}
import { whyNotRetryable } from './retryable.ts';
import type { ToolRegistry } from '../tools/registry.ts';
import type { ModelClient } from '../model/types.ts';
import { Executor, type AdvanceOutcome } from './executor.ts';
import { appendEvent } from '../db/queries/events.ts';
import { enqueueAdvance } from '../db/queries/jobs.ts';
import { selectRunApprovers } from '../db/queries/approvals.ts';
import * as journal from '../db/queries/runs.ts';
import { newRunTraceContext } from '../telemetry/tracing-spans.ts';
import type { EventRow, RunRow, RunStatus, StepRow } from '../db/queries/runs.ts';
import type { WorkflowRegistry } from './registry.ts';

export interface StartRunRequest {
  workflow: string;
  input: unknown;
  /** Pin a version; the newest registered when omitted. */
  version?: number;
  requester?: Principal | null;
  /** Where the request was made (src/runtime/origin.ts): the CLI, or a chat conversation and thread. */
  origin?: RunOrigin | null;
}

/**
 * How a person's change came in, recorded with it in the event's payload: `via` the platform
 * ('slack', 'teams', 'cli'), and from the CLI the OS user who typed the command (`cli:<host>:<user>`),
 * also when the change is made as another principal with `--as`.
 */
export interface ActorContext {
  via?: string;
  osUser?: string;
}

export interface OperateOptions extends ActorContext {
  /** Run inside the caller's transaction (as chat intake does). */
  client?: Queryable;
}

/** A run checked and ready to be recorded (Runtime.prepareRun). */
export interface PreparedRun {
  id: string;
  workflow: string;
  version: number;
  input: unknown;
  requester: Principal | null;
  origin: RunOrigin | null;
}

export interface RunDetail {
  run: RunRow;
  steps: StepRow[];
  events: EventRow[];
}

export interface RuntimeOptions {
  pool: pg.Pool;
  registry: WorkflowRegistry;
  log: Logger;
  inlineWaitMaxMs?: number;
  /** Groups and operators for approvals, workflow and tool settings. */
  project?: ProjectConfig;
  /** The tools workflows may call; the built-in ones by default. */
  tools?: ToolRegistry;
  /** How long an advance waits for a run another executor holds before giving up (default 10 s). */
  lockWaitMs?: number;
  /**
   * Recoveries allowed per run before it is dead-lettered (default 5; config
   * TOLLGATE_MAX_RECOVERIES). Given here, never read from the environment by the runtime.
   */
  maxRecoveries?: number;
  /** The model client of model steps (`ctx.model`); without one they fail for good (TG_MODEL_NOT_CONFIGURED). */
  model?: ModelClient;
}

export class Runtime {
  readonly pool: pg.Pool;
  readonly registry: WorkflowRegistry;
  readonly log: Logger;
  readonly executor: Executor;
  readonly project: ProjectConfig;
  readonly tools: ToolRegistry;

  constructor(opts: RuntimeOptions) {
    this.tools = opts.tools ?? builtinToolRegistry();
    this.pool = opts.pool;
    this.registry = opts.registry;
    this.log = opts.log;
    this.project = opts.project ?? EMPTY_PROJECT_CONFIG;
    this.executor = new Executor({
      pool: opts.pool,
      registry: opts.registry,
      log: opts.log,
      inlineWaitMaxMs: opts.inlineWaitMaxMs,
      lockWaitMs: opts.lockWaitMs,
      maxRecoveries: opts.maxRecoveries,
      project: this.project,
      tools: this.tools,
      model: opts.model,
    });
  }

  /**
   * Records `principal`'s decision on an approval (one transaction; see src/approvals/decide.ts)
   * and, when the gate resolves, enqueues the run. The principal must be a verified identity; the
   * approval's policy decides whether it may (src/approvals/policy.ts `authorise`). `opts.via` and
   * `opts.osUser` are recorded with the decision.
   */
  async decide(
    approvalId: string,
    principal: Principal | string,
    decision: 'approve' | 'reject',
    comment?: string,
    opts: Omit<DecideOptions, 'comment'> = {},
  ): Promise<DecideOutcome> {
    const outcome = await decideApproval(this.pool, this.project, approvalId, principal, decision, { ...opts, comment });
    this.log.info({ approvalId, decision, outcome: outcome.kind, resolved: outcome.resolved }, 'approval decision');
    return outcome;
  }

  /**
   * `decide` inside the caller's transaction (src/approvals/decide.ts `decideWithin`): for a
   * caller that commits more with the decision, such as the explanation of a refused click.
   */
  async decideWithin(
    q: Queryable,
    approvalId: string,
    principal: Principal,
    decision: 'approve' | 'reject',
    comment?: string,
    opts: Omit<DecideOptions, 'comment'> = {},
  ): Promise<DecideOutcome> {
    const outcome = await decideApprovalWithin(q, this.project, approvalId, principal, decision, { ...opts, comment });
    this.log.info({ approvalId, decision, outcome: outcome.kind, resolved: outcome.resolved }, 'approval decision');
    return outcome;
  }

  /** Validates the input against the workflow's schema, records the run and enqueues it. */
  async startRun(req: StartRunRequest, client?: Queryable): Promise<RunRow> {
    const prepared = this.prepareRun(req);
    // One statement (run, event, job), so no transaction of its own is needed.
    const run = await journal.insertQueuedRun(client ?? this.pool, prepared, newRunTraceContext(prepared.workflow));
    this.log.info({ runId: prepared.id, workflow: prepared.workflow, version: prepared.version }, 'run queued');
    return run;
  }

  /**
   * What startRun records, checked and given its id, without writing it: for callers that record
   * many runs in one statement (the chat intake's group commit, src/chat/intake-writes.ts). Throws
   * TG_INPUT_INVALID (and TG_WORKFLOW_NOT_FOUND, TG_ORIGIN_INVALID) exactly as startRun does.
   */
  prepareRun(req: StartRunRequest): PreparedRun {
    const def = this.registry.get(req.workflow, req.version);
    const parsed = checkRunInput(def.input, req.input);
    if (!parsed.success) {
      throw new TollgateError('TG_INPUT_INVALID', `Invalid input for ${def.name}: ${describeIssues(parsed.error)}`, {
        workflow: def.name,
        issues: parsed.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })),
      });
    }
    return {
      id: newId('run'),
      workflow: def.name,
      version: def.version,
      input: parsed.data,
      requester: req.requester ?? null,
      origin: req.origin ? checkOrigin(req.origin) : null,
    };
  }

  /**
   * Requests cancellation; the executor stops at the next step boundary and compensates. Only the
   * run's requester or an operator may (TG_NOT_ALLOWED otherwise, nothing changed). With
   * `opts.client`, inside the caller's transaction (as for startRun and retry).
   */
  async cancel(runId: string, actor: Principal | null, opts: OperateOptions = {}): Promise<RunRow> {
    return this.#transaction(opts.client, async (q) => {
      const run = await this.#lockRun(q, runId);
      this.#authoriseOperate(run, actor, 'cancel');
      if (isTerminal(run.status)) {
        throw new TollgateError(
          'TG_RUN_STATE',
          `Run ${runId} has already ${run.status === 'compensation_failed' ? 'ended with a failed compensation' : run.status}; only queued, running or waiting runs can be cancelled.`,
          { runId, status: run.status },
        );
      }
      // A dead-lettered run is only ever moved by a person: cancelling it re-queues it (its
      // recoveries counted afresh) so the executor stops it and undoes its completed steps. The
      // undo does not re-run the step its workers kept dying in (a cancelled replay never starts
      // an unfinished step), which is why cancel is the way out when a retry would crash again.
      const deadLetter = run.status === 'dead_letter';
      if (run.cancel_requested_at && !deadLetter) return run;
      const cancelled = await journal.requestCancel(q, runId, actor);
      await appendEvent(q, {
        runId,
        type: 'run.cancel_requested',
        actor,
        payload: { ...(deadLetter ? { fromDeadLetter: true, recoveries: run.recovery_attempts } : {}), ...provenance(opts) },
      });
      await enqueueAdvance(q, runId);
      return cancelled;
    });
  }

  /**
   * Resumes a failed run at the step that failed, or a dead-lettered run where its workers were
   * interrupted; completed steps are not executed again. Only the run's requester or an operator
   * may (TG_NOT_ALLOWED otherwise, nothing changed).
   */
  async retry(runId: string, actor: Principal | null, opts: OperateOptions = {}): Promise<RunRow> {
    return this.#transaction(opts.client, async (q) => {
      const run = await this.#lockRun(q, runId);
      this.#authoriseOperate(run, actor, 'retry');
      if (run.status === 'dead_letter') return this.#retryDeadLetter(q, run, actor, opts);
      checkRetryable(run);
      const failed = await journal.resetFailedSteps(q, runId);
      await clearHeld(q, runId);
      const queued = await journal.requeueFailedRun(q, runId);
      await appendEvent(q, {
        runId,
        type: 'run.retried',
        actor,
        payload: { fromSteps: failed.map((r) => r.name), previousError: run.error, ...provenance(opts) },
      });
      await enqueueAdvance(q, runId);
      return queued;
    });
  }

  /**
   * What Edit and retry with `values` (text by field, as typed) would do to run `runId`: the
   * checked input, the changed keys, the steps that run again and those undone first (amend.ts).
   * Writes nothing. The same checks as `retryWithEdits`: TG_NOT_ALLOWED, TG_RUN_STATE, and
   * TG_INPUT_INVALID with `details.fieldErrors` for a value the workflow's schema refuses.
   */
  async planEdit(runId: string, actor: Principal | null, values: Record<string, string | undefined>, client: Queryable = this.pool): Promise<EditPlan> {
    const run = await journal.readRun(client, runId);
    if (!run) throw notFound(runId);
    this.#authoriseOperate(run, actor, 'edit and retry');
    return this.#plan(client, run, values);
  }

  async #plan(q: Queryable, run: RunRow, values: Record<string, string | undefined>): Promise<EditPlan> {
    checkRetryable(run, 'edited and retried');
    const def = this.registry.get(run.workflow, run.workflow_version);
    const parsed = editedInput(def, run.input, values);
    if (!parsed.success) throw invalidEdit(def, parsed.error);
    return planEdit(def, run, await journal.loadSteps(q, run.id), parsed.data, this.tools, this.log);
  }

  /**
   * Edit and retry: the failed run continues with its input changed by `values` (see `planEdit`).
   * Completed steps whose recorded inputs the edit leaves unchanged are kept; from the first one
   * it changes, the completed steps are undone and run again (src/runtime/rewind.ts). The
   * requester or an operator may. The `run.edited` event records who, the changed keys with old
   * and new values, what runs again, and `via`.
   */
  async retryWithEdits(
    runId: string,
    actor: Principal | null,
    values: Record<string, string | undefined>,
    opts: OperateOptions = {},
  ): Promise<{ run: RunRow; plan: EditPlan }> {
    return this.#transaction(opts.client, async (q) => {
      const run = await this.#lockRun(q, runId);
      this.#authoriseOperate(run, actor, 'edit and retry');
      const plan = await this.#plan(q, run, values);
      const failed = await journal.resetFailedSteps(q, runId);
      const queued = await requeueEdited(q, runId, plan.input, rewindOf(plan, run.input));
      await appendEvent(q, {
        runId,
        type: 'run.edited',
        actor,
        payload: {
          changed: plan.changed,
          fromSteps: failed.map((r) => r.name),
          rerun: plan.rerun,
          undo: plan.undo,
          previousError: run.error,
          ...provenance(opts),
        },
      });
      await enqueueAdvance(q, runId);
      this.log.info({ runId, changed: Object.keys(plan.changed), rerun: plan.rerun }, 'run edited and retried');
      return { run: queued, plan };
    });
  }

  /**
   * The failed step `actor` may resolve by hand in run `runId`, and which resolutions its workflow
   * allows: for the form shown before `resolve`. The same refusals as `resolve` (an operator, a
   * run failed at a step that allows one), with nothing changed.
   */
  async resolvableStep(runId: string, actor: Principal | null): Promise<{ run: RunRow; held: HeldStep }> {
    const run = await journal.readRun(this.pool, runId);
    if (!run) throw notFound(runId);
    this.#authoriseResolve(run, actor, 'resolve');
    const held = run.held as HeldStep | null;
    const action = held?.byHand ? 'by-hand' : held?.skip ? 'skip' : 'give-up';
    return { run, held: heldFor(run, action) };
  }

  #authoriseResolve(run: RunRow, actor: Principal | null, action: string): void {
    if (actor === null || isOperator(actor, this.project)) return;
    this.log.info({ runId: run.id, actor: formatPrincipal(actor), action }, 'refused: not an operator');
    throw new TollgateError(
      'TG_NOT_ALLOWED',
      `Only an operator can resolve a failed step of run ${run.id} by hand, skip it or give it up; ${formatPrincipal(actor)} is not one, so nothing was changed.`,
      { runId: run.id, actor: formatPrincipal(actor), action },
    );
  }

  /**
   * Resolve by hand, Skip and compensate, or Give up, on a run that failed at a step whose
   * workflow allows it (`resolvable`, amend.ts). Operators only: this stands in for the step or
   * ends the run, beyond what its requester may do. The event (`step.resolved_by_hand`,
   * `run.skip_requested`, `run.given_up`) records who, why, the output given and `via`.
   */
  async resolve(runId: string, actor: Principal | null, resolution: Resolution, opts: OperateOptions = {}): Promise<RunRow> {
    return this.#transaction(opts.client, async (q) => {
      const run = await this.#lockRun(q, runId);
      this.#authoriseResolve(run, actor, resolution.action);
      const held = heldFor(run, resolution.action);
      const reason = checkReason(resolution.reason, resolution.action);
      const event = { runId, stepIdx: held.idx, actor };
      if (resolution.action === 'by-hand') {
        const def = this.registry.get(run.workflow, run.workflow_version);
        const output = await checkByHandOutput(def, run, await journal.loadSteps(q, runId), held, resolution.output, this.tools, this.log);
        const queued = await resolveStepByHand(q, runId, held.idx, output);
        await appendEvent(q, { ...event, type: 'step.resolved_by_hand', payload: { step: held.name, output: output ?? null, reason, ...provenance(opts) } });
        await enqueueAdvance(q, runId);
        return queued;
      }
      if (resolution.action === 'skip') {
        const queued = await requeueToCompensate(q, runId, actor);
        await appendEvent(q, { ...event, type: 'run.skip_requested', payload: { step: held.name, reason, ...provenance(opts) } });
        await enqueueAdvance(q, runId);
        return queued;
      }
      const by = actor ? formatPrincipal(actor) : null;
      const ended = await giveUpRun(q, runId, { step: held.name, by, reason });
      await appendEvent(q, { ...event, type: 'run.given_up', payload: { step: held.name, reason, ...provenance(opts) } });
      return ended;
    });
  }

  /**
   * Takes a run out of dead letter: its recovery count starts again from 0 and it is queued. The
   * journal is left as it is, so the replay resumes exactly where the interrupted advances stopped
   * (the step left started is attempted again, with the same idempotency key); a run that was
   * compensating when set aside replays to the same failure and resumes its undo.
   */
  async #retryDeadLetter(q: Queryable, run: RunRow, actor: Principal | null, opts: ActorContext): Promise<RunRow> {
    const queued = await journal.requeueDeadLetter(q, run.id);
    await appendEvent(q, {
      runId: run.id,
      type: 'run.retried',
      actor,
      payload: { fromDeadLetter: true, recoveries: run.recovery_attempts, previousError: run.error, ...provenance(opts) },
    });
    await enqueueAdvance(q, run.id);
    return queued;
  }

  /** Runs the executor on a run now, in this process (the job does the same); see Executor.advance for `opts`. */
  advance(runId: string, executorId: string, signal?: AbortSignal, opts?: { waitForLock?: boolean }): Promise<AdvanceOutcome> {
    return this.executor.advance(runId, executorId, signal, opts);
  }

  async getRun(runId: string): Promise<RunDetail> {
    const row = await journal.readRun(this.pool, runId);
    if (!row) throw notFound(runId);
    const [steps, events] = await Promise.all([journal.loadSteps(this.pool, runId), journal.loadEvents(this.pool, runId)]);
    return { run: row, steps, events };
  }

  async listRuns(opts: { limit?: number; status?: RunStatus; workflow?: string } = {}): Promise<RunRow[]> {
    return journal.listRuns(this.pool, opts);
  }

  /**
   * The run, if `viewer` may see it (src/intents/authorize.ts `mayReadRun`: its tenant, its
   * approvers, operators). A run the viewer may not see is answered exactly like a missing one
   * (TG_RUN_NOT_FOUND), so another tenant does not learn that it exists.
   */
  async readRun(runId: string, viewer: Principal, client: Queryable = this.pool): Promise<RunRow> {
    const run = await journal.readRun(client, runId);
    if (!run) throw notFound(runId);
    const approvers = await selectRunApprovers(client, runId);
    if (!mayReadRun(viewer, run, approvers, this.project)) {
      this.log.info({ runId, viewer: formatPrincipal(viewer) }, 'refused: run read from outside its tenant');
      throw notFound(runId);
    }
    return run;
  }

  #authoriseOperate(run: RunRow, actor: Principal | null, action: 'retry' | 'cancel' | 'edit and retry'): void {
    if (actor === null || mayOperateRun(actor, run, this.project)) return;
    this.log.info({ runId: run.id, actor: formatPrincipal(actor), action }, 'refused: not the requester or an operator');
    throw new TollgateError(
      'TG_NOT_ALLOWED',
      `Only the person who started run ${run.id} or an operator can ${action} it; ${formatPrincipal(actor)} is neither, so nothing was changed.`,
      { runId: run.id, actor: formatPrincipal(actor), action },
    );
  }

  /**
   * Locks the run row for a change that keeps its key. NO KEY UPDATE, not UPDATE: every event
   * insert of the run holds a KEY SHARE lock on it (the foreign key), which FOR UPDATE would wait
   * for, queueing ahead of that executor's own update of the run: a deadlock, seen as a cancel
   * failing with "deadlock detected" while the run was advancing.
   */
  async #lockRun(q: Queryable, runId: string): Promise<RunRow> {
    const run = await journal.readRun(q, runId, 'FOR NO KEY UPDATE');
    if (!run) throw notFound(runId);
    return run;
  }

  /** Runs `fn` in a transaction; when the caller passes its own client, inside the caller's. */
  async #transaction<T>(client: Queryable | undefined, fn: (q: Queryable) => Promise<T>): Promise<T> {
    return client ? fn(client) : withRetriedTransaction(this.pool, fn);
  }
}

/** Refuses a run a retry (plain or edited) cannot help: not failed, purged, or after a rejection or a Give up. */
function checkRetryable(run: RunRow, what = 'retried'): void {
  const runId = run.id;
  if (run.status !== 'failed') {
    throw new TollgateError(
      'TG_RUN_STATE',
      `Run ${runId} is ${run.status}; only failed runs can be ${what}.` +
        (run.status === 'compensated' ? ' Its completed steps were already undone, so start a new run instead.' : ''),
      { runId, status: run.status },
    );
  }
  if (run.journal_purged_at) {
    throw new TollgateError('TG_RUN_STATE', `Run ${runId} cannot be ${what}: retention purged its recorded step outputs. Start a new run instead.`, {
      runId,
    });
  }
  const hopeless = whyNotRetryable(run);
  if (hopeless) throw new TollgateError('TG_RUN_STATE', hopeless, { runId, reason: 'approval-rejected' });
}

export function isTerminal(status: RunStatus): boolean {
  return journal.isTerminalStatus(status);
}

/** What to record about how a change came in (only what is known). */
function provenance(opts: ActorContext): ActorContext {
  return { ...(opts.via ? { via: opts.via } : {}), ...(opts.osUser ? { osUser: opts.osUser } : {}) };
}

function notFound(runId: string): TollgateError {
  return new TollgateError('TG_RUN_NOT_FOUND', `No run with id "${runId}". List runs with \`tollgate runs list\`.`, { runId });
}
