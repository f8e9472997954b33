/**
 * One replay of one run (`Replay`): implements the workflow context (`ctx`) against the run's
 * journal, for the executor (src/runtime/executor.ts, whose general notes describe replay), which
 * makes one per advance.
 *
 * The run stops by throwing through the workflow: `Suspend` (wait for a timer, a retry's backoff
 * or an approval) or `Cancelled`; the executor reads `stopped` to tell these from the workflow's
 * own errors. Every journal write goes through the run's locked connection; a failed write sets
 * `journalError`, after which nothing more runs. It never decides who may do what; approvals and
 * tools enforce that before a step.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { NondeterminismError, NonRetriableError, StepFailedError, serializeError, type SerializedError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { pause } from '../common/backoff.ts';
import { runApprovalGate } from '../approvals/gate.ts';
import type { ApprovalOptions, ApprovalResult } from '../approvals/types.ts';
import type { ProjectConfig } from '../config/project-config.ts';
import { prepareToolCall, requireApproval, toolStep } from '../tools/invoke.ts';
import type { ToolRegistry } from '../tools/registry.ts';
import { traceStepAttempt } from '../telemetry/tracing-spans.ts';
import { timeStepAttempt } from '../telemetry/metrics.ts';
import { listModelCalls, recordModelCall } from '../model/record.ts';
import { attemptModelStep, modelStepName, withheldValues, type ModelStepCall } from '../model/steps.ts';
import type { ModelClient } from '../model/types.ts';
import { cancelPendingApproval } from '../db/queries/approvals.ts';
import * as journal from '../db/queries/runs.ts';
import type { RunRow, StepRow } from '../db/queries/runs.ts';
import type { HeldStep } from '../db/queries/rerun.ts';
import type { Queryable } from '../db/queryable.ts';
import { budgetApproval, budgetRefused, checkBudget, type BudgetDecision } from './model-budget.ts';
import { nextDelayMs, resolveRetry, type ResolvedRetry } from './retry.ts';
import { heldResult, runAttempt, stepKey } from './step-attempt.ts';
import { type ModelBudget, type StepContext, type StepOptions, type ToolCallOptions, type WorkflowContext, type WorkflowDefinition } from './workflow.ts';
import { parseDuration, type Duration } from './duration.ts';

/** What a replay needs besides the journal: approvals resolve groups, tools get config and pool. */
export interface ReplayEnv {
  pool: pg.Pool;
  project: ProjectConfig;
  tools: ToolRegistry;
  model: ModelClient | undefined;
}

/** Thrown through the workflow when the run must stop here and wait. */
export class Suspend {
  constructor(
    readonly reason: string,
    readonly wakeAt: Date | null,
  ) {}
}
/** Thrown through the workflow when the run was cancelled. */
export class Cancelled {}

/** A completed step with an undo, to run in reverse order when the run fails for good or is cancelled. */
export interface Compensation {
  idx: number;
  name: string;
  output: unknown;
  fn: NonNullable<StepOptions['compensate']>;
  retry: ResolvedRetry;
  row: StepRow | undefined;
}

/** A child logger made on first call, then kept. */
function lazyChild(parent: Logger, bindings: Record<string, unknown>): () => Logger {
  let child: Logger | undefined;
  return () => (child ??= parent.child(bindings));
}

/** JSON round trip, so a live result equals what a replay will read back. */
export function asJson<T>(value: T, what = 'A step output'): T {
  if (value === undefined) return value;
  const text = JSON.stringify(value);
  // PostgreSQL's jsonb cannot hold U+0000; storing it would fail the journal write on every retry.
  if (text.includes('\\u0000')) {
    throw new NonRetriableError(
      `${what} contains a NUL character (\\u0000), which PostgreSQL cannot store. Encode binary data (e.g. base64) before returning it.`,
    );
  }
  return JSON.parse(text) as T;
}

/**
 * One replay of one run: implements the workflow context against the journal.
 */
export class Replay {
  readonly context: WorkflowContext<unknown>;
  counter = 0;
  stopped: Suspend | Cancelled | NondeterminismError | undefined;
  /** Set when a journal write failed: the replay's outcome then means nothing. */
  journalError: unknown;
  /**
   * The step that failed for good on this replay while allowing a person's resolution
   * (`resolvable`): its failure holds the run's undo (src/runtime/executor.ts).
   */
  held: HeldStep | undefined;
  readonly compensations: Compensation[] = [];
  readonly #q: Queryable;
  readonly #run: RunRow;
  readonly #journal: Map<number, StepRow>;
  readonly #names = new Map<string, number>();
  readonly #pendingValues: { idx: number; name: string; kind: string; output: unknown }[] = [];
  /**
   * A step's success not written yet: it goes out in the same statement as the next step's start
   * (one round trip instead of two), or on its own at the next turn of the event loop when the
   * workflow does something else first, and always before any other journal write. So a
   * success is durable no later than it was when written at once, give or take one event-loop turn.
   */
  #unwritten: journal.StepSuccess[] = [];
  /** The chain of successes being written on their own, in order; its error is rethrown by the next take. */
  #writing: Promise<void> | undefined;
  readonly #log: Logger;
  readonly #signal: AbortSignal;
  readonly #inlineWaitMaxMs: number;
  readonly #cancelling: boolean;
  readonly #def: WorkflowDefinition;
  readonly #env: ReplayEnv;

  constructor(
    q: Queryable,
    run: RunRow,
    def: WorkflowDefinition,
    steps: StepRow[],
    log: Logger,
    signal: AbortSignal,
    inlineWaitMaxMs: number,
    cancelling: boolean,
    env: ReplayEnv,
  ) {
    this.#def = def;
    this.#env = env;
    // Journal writes go through this wrapper so a database failure is told apart from a failure
    // of the workflow's own code (which fails or retries a step).
    this.#q = {
      query: ((...args: Parameters<Queryable['query']>) =>
        (q.query as (...a: unknown[]) => Promise<unknown>)(...args).catch((e: unknown) => {
          this.journalError ??= e;
          throw e;
        })) as Queryable['query'],
    };
    this.#run = run;
    this.#journal = new Map(steps.map((s) => [s.idx, s]));
    this.#log = log;
    this.#signal = signal;
    this.#inlineWaitMaxMs = inlineWaitMaxMs;
    this.#cancelling = cancelling;
    this.context = {
      runId: run.id,
      workflow: def.name,
      version: def.version,
      input: run.input,
      log,
      step: (name, fn, options) => this.step(name, fn, options),
      sleep: (name, duration) => this.sleep(name, duration),
      approval: (name, options) => this.approval(name, options),
      tool: <T>(name: string, input: unknown, options?: ToolCallOptions) => this.tool(name, input, options) as Promise<T>,
      now: () => new Date(this.value('now', 'now', () => new Date().toISOString()) as string),
      randomUUID: () => this.value('uuid', 'uuid', () => randomUUID()) as string,
      model: {
        extract: (schema, input, options) => this.model({ kind: 'extract', schema, input, options }) as never,
        classify: (labels, input, options) => this.model({ kind: 'classify', labels, input, options }) as never,
        generate: (prompt, input, options) => this.model({ kind: 'generate', prompt, input, options }) as Promise<string>,
      },
    };
  }

  /** Claims the next index for `name` and checks it against the journal. Synchronous on purpose. */
  #claim(name: string): { idx: number; name: string; row: StepRow | undefined } {
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- Suspend and Cancelled are control-flow signals, deliberately not Errors (a workflow's `instanceof Error` handling must not take them for failures)
    if (this.stopped) throw this.stopped;
    // A journal write failed: nothing more may run on a journal that is missing a record (the
    // workflow could otherwise catch the error and act as if the earlier step had not happened).
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows the database driver's failure exactly as it was caught (typed unknown by the catch)
    if (this.journalError) throw this.journalError;
    const seen = (this.#names.get(name) ?? 0) + 1;
    this.#names.set(name, seen);
    const unique = seen === 1 ? name : `${name}:${seen}`;
    const idx = this.counter++;
    const row = this.#journal.get(idx);
    if (row && row.name !== unique) {
      const nondeterminism = new NondeterminismError(this.#run.id, idx, row.name, unique);
      this.stopped = nondeterminism;
      throw nondeterminism;
    }
    return { idx, name: unique, row };
  }

  #stop(signal: Suspend | Cancelled): never {
    this.stopped = signal;
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- Suspend and Cancelled are control-flow signals, deliberately not Errors (see #claim)
    throw signal;
  }

  value(kind: string, name: string, make: () => unknown): unknown {
    const { idx, name: unique, row } = this.#claim(name);
    if (row) return row.output;
    const output = make();
    this.#pendingValues.push({ idx, name: unique, kind, output });
    return output;
  }

  /** `value` for something that must be looked up first: claimed at once (synchronously), computed only on first execution. */
  async #valueOf(kind: string, name: string, make: () => Promise<unknown>): Promise<unknown> {
    const { idx, name: unique, row } = this.#claim(name);
    if (row) return row.output;
    const output = asJson(await make());
    this.#pendingValues.push({ idx, name: unique, kind, output });
    return output;
  }

  /** Writes recorded values (`now`, `uuid`) before anything that depends on them becomes durable. */
  async flush(): Promise<void> {
    if (this.#pendingValues.length === 0) return;
    await this.settle(); // the step before them first, so the journal keeps the workflow's order
    const batch = this.#pendingValues.splice(0);
    await journal.recordValues(this.#q, this.#run.id, batch);
  }

  #deferSuccess(success: journal.StepSuccess): void {
    // A list, not one slot: steps running concurrently (Promise.all) can finish in the same turn.
    this.#unwritten.push(success);
    setImmediate(() => {
      const i = this.#unwritten.indexOf(success);
      if (i < 0) return; // taken by a step's start or a settle meanwhile
      this.#unwritten.splice(i, 1);
      this.#chainWrite(success);
    });
  }

  #chainWrite(success: journal.StepSuccess): void {
    const previous = this.#writing ?? Promise.resolve();
    const writing = previous.then(() => journal.succeedStep(this.#q, this.#run.id, success.idx, success.name, success.output));
    writing.catch(() => {}); // awaited, and so rethrown, by the next takeUnwritten()
    this.#writing = writing;
  }

  /**
   * Waits for the successes being written on their own (rethrowing their error), writes all
   * unwritten ones but the newest, and returns that one for the caller to write with its own
   * statement.
   */
  async takeUnwritten(): Promise<journal.StepSuccess | undefined> {
    const pending = this.#unwritten.splice(0);
    const last = pending.pop();
    for (const s of pending) this.#chainWrite(s);
    const writing = this.#writing;
    this.#writing = undefined;
    if (writing) await writing;
    return last;
  }

  /** Writes every step success not written yet. Call before any journal write but a step start. */
  async settle(): Promise<void> {
    const unwritten = await this.takeUnwritten();
    if (unwritten) await journal.succeedStep(this.#q, this.#run.id, unwritten.idx, unwritten.name, unwritten.output);
  }

  step<T>(name: string, fn: (ctx: StepContext) => Promise<T> | T, options: StepOptions = {}): Promise<T> {
    return this.#runStep(this.#claim(name), fn, options, 'step');
  }

  /** A tool call: checked (listed, valid input, approved if it writes), then run as a step of kind 'tool'. */
  async tool(name: string, input: unknown, options: ToolCallOptions = {}): Promise<unknown> {
    const claimed = this.#claim(name);
    const call = prepareToolCall(this.#env.tools, this.#def, this.#run.id, name, input);
    const { run, compensate } = toolStep(call, this.#env.project, this.#env.pool);
    const before =
      call.effect === 'write'
        ? async () => {
            await requireApproval(this.#q, this.#run.id, claimed.idx, call);
          }
        : undefined;
    // The tool's version goes into each attempt's chained step.started event: the evidence of which version ran.
    const started = { tool: call.tool.name, toolVersion: call.tool.version };
    return this.#runStep(
      claimed,
      run,
      { retry: options.retry, timeoutMs: options.timeoutMs, compensate: options.compensate ? compensate : undefined, resolvable: options.resolvable },
      'tool',
      call.input,
      before,
      started,
    );
  }

  /** An approval gate (see src/approvals/gate.ts): suspends until decided, then records the decision. */
  async approval(name: string, options: ApprovalOptions): Promise<ApprovalResult> {
    const { idx, name: unique, row } = this.#claim(name);
    if (row?.status === 'succeeded') return row.output as ApprovalResult;
    if (this.#cancelling) {
      if (row) {
        await this.settle();
        await cancelPendingApproval(this.#q, this.#run.id, idx);
      }
      this.#stop(new Cancelled());
    }
    await this.flush();
    await this.settle();
    const gate = await runApprovalGate(this.#q, { run: this.#run, idx, step: unique, options, project: this.#env.project });
    if (gate.kind === 'suspend') this.#stop(new Suspend('approval', gate.wakeAt));
    const output = asJson(gate.result);
    await journal.succeedStep(this.#q, this.#run.id, idx, unique, output);
    return output;
  }

  /**
   * A model step (src/model/steps.ts): behind the run's budget gate when the workflow has a budget,
   * then a step of kind 'model' whose every attempt is one recorded call. Its output (the
   * re-hydrated answer, real values) is memoized like any step's; only the `model.called` events
   * hold what was sent, redacted.
   */
  async model(call: ModelStepCall): Promise<unknown> {
    const name = modelStepName(call);
    if (this.#def.budget) await this.#budgetGate(name, call, this.#def.budget);
    const claimed = this.#claim(name);
    const withhold = withheldValues(this.#run.input, this.#def.neverSend ?? []);
    const fn = async (ctx: StepContext) => {
      const attempt = await attemptModelStep(this.#env.model, call, withhold, ctx.signal);
      if (attempt.record) {
        // Through the run's locked connection while the attempt is live; an attempt abandoned by
        // its timeout may answer after the advance let the connection go, so it goes by the pool.
        const q = ctx.signal.aborted ? this.#env.pool : this.#q;
        await recordModelCall(
          q,
          { runId: this.#run.id, stepIdx: claimed.idx, actor: null, context: { stepIdx: claimed.idx, step: claimed.name, attempt: ctx.attempt } },
          attempt.record,
        );
      }
      if (!attempt.ok) throw attempt.error;
      return attempt.output;
    };
    const { prompt, retry, timeoutMs } = call.options;
    const input = { kind: call.kind, prompt, input: call.input };
    return this.#runStep(claimed, fn, { retry, timeoutMs }, 'model', input);
  }

  /**
   * The run's cost budget, checked before a model step's call: when what the run's calls cost so
   * far plus this call's estimate would pass the budget, the step waits for an approval and runs
   * only if it is approved. The decision is recorded (a journal value), so a replay takes the same
   * road whatever the configuration or the spending says by then. Without a price for the model
   * nothing can be estimated, and a budget that cannot be checked asks a person too.
   */
  async #budgetGate(step: string, call: ModelStepCall, budget: ModelBudget): Promise<void> {
    const decision = (await this.#valueOf('budget', `budget-check:${step}`, () =>
      checkBudget(this.#env.model, call, budget, () => listModelCalls(this.#q, this.#run.id)),
    )) as BudgetDecision;
    if (!decision.gate) return;
    const gate = await this.approval(`budget:${step}`, budgetApproval(this.#def.name, step, budget, decision));
    if (!gate.approved) throw budgetRefused(this.#run.id, step, decision, gate);
  }

  async #runStep<T>(
    claimed: { idx: number; name: string; row: StepRow | undefined },
    fn: (ctx: StepContext) => Promise<T> | T,
    options: StepOptions,
    kind: string,
    input?: unknown,
    before?: () => Promise<void>,
    started?: Record<string, unknown>,
  ): Promise<T> {
    const { idx, name: unique, row } = claimed;
    const retry = resolveRetry(options.retry);
    if (row?.status === 'succeeded' || row?.status === 'compensated' || row?.status === 'compensating' || row?.status === 'compensation_failed') {
      if (options.compensate) {
        this.compensations.push({
          idx,
          name: unique,
          output: row.output,
          fn: options.compensate,
          retry: resolveRetry(options.compensateRetry ?? options.retry),
          row,
        });
      }
      return row.output as T;
    }
    if (row?.status === 'failed') {
      throw new StepFailedError(unique, row.attempts, row.error as SerializedError);
    }
    if (this.#cancelling) this.#stop(new Cancelled());
    if (before) {
      await this.flush();
      await this.settle(); // the previous step's success first: the journal keeps the workflow's order
      await before();
    }

    // Its body finished in this process but the success could not be recorded (the database was
    // away): record the held result instead of running the body again (src/runtime/step-attempt.ts).
    const kept = row?.status === 'running' ? heldResult(this.#run.id, idx, row.attempts) : undefined;
    if (kept) return this.#succeedWith(claimed, asJson(kept.output as T), options);

    let attempt = (row?.attempts ?? 0) + 1;
    let notBefore = row?.next_attempt_at ?? null;
    // Made on first use: most steps never log, and a pino child per step is measurable on the hot path.
    const log = lazyChild(this.#log, { step: unique });
    for (;;) {
      if (notBefore) {
        const wait = notBefore.getTime() - Date.now();
        if (wait > this.#inlineWaitMaxMs) this.#stop(new Suspend('retry', notBefore));
        // pause() removes its abort listener when the timer fires: one left behind per wait would
        // pile up on the advance's signal (see src/common/abort.ts).
        if (wait > 0) await pause(wait, this.#signal);
        if (this.#signal.aborted) this.#stop(new Suspend('shutdown', new Date()));
      }
      await this.flush();
      if (input !== undefined) asJson(input, `The input of ${kind} "${unique}"`); // refused before it is recorded
      const previous = await this.takeUnwritten();
      const attemptStart = await journal.startStepAttempt(this.#q, { runId: this.#run.id, idx, name: unique, kind, attempt, input, started }, previous);
      if (attemptStart.cancelRequested) this.#stop(new Cancelled());
      try {
        const key = stepKey(this.#run, idx);
        const body = () => runAttempt({ runId: this.#run.id, name: unique, idx, key, attempt, fn, timeoutMs: options.timeoutMs, log, shutdown: this.#signal });
        const output = asJson(await timeStepAttempt(this.#run.workflow, kind, () => traceStepAttempt(this.#run, { name: unique, idx, attempt, kind }, body)));
        return this.#succeedWith(claimed, output, options);
      } catch (e) {
        const final = e instanceof NonRetriableError || attempt >= retry.maxAttempts;
        const error = serializeError(e);
        if (final) {
          await journal.failStepAttempt(this.#q, this.#run.id, idx, unique, error, null);
          log().warn({ err: error, attempt }, 'step failed for good');
          const r = options.resolvable;
          if (r && (r.byHand || r.skip || r.giveUp)) this.held = { idx, name: unique, kind, byHand: !!r.byHand, skip: !!r.skip, giveUp: !!r.giveUp };
          throw new StepFailedError(unique, attempt, error);
        }
        const delay = nextDelayMs(retry, attempt, e);
        notBefore = new Date(Date.now() + delay);
        await journal.failStepAttempt(this.#q, this.#run.id, idx, unique, error, notBefore);
        log().info({ err: error.message, attempt, delayMs: delay }, 'step attempt failed; will retry');
        attempt++;
      }
    }
  }

  /** A step's body returned `output`: its success goes out with the next journal write, and its undo is remembered. */
  #succeedWith<T>(claimed: { idx: number; name: string }, output: T, options: StepOptions): T {
    const { idx, name } = claimed;
    this.#deferSuccess({ idx, name, output });
    if (options.compensate) {
      this.compensations.push({ idx, name, output, fn: options.compensate, retry: resolveRetry(options.compensateRetry ?? options.retry), row: undefined });
    }
    return output;
  }

  async sleep(name: string, duration: Duration): Promise<void> {
    const { idx, name: unique, row } = this.#claim(name);
    if (row?.status === 'succeeded') return;
    if (this.#cancelling) this.#stop(new Cancelled());
    let wakeAt = row?.wake_at ?? null;
    if (!wakeAt) {
      wakeAt = new Date(Date.now() + parseDuration(duration));
      await this.flush();
      await this.settle();
      await journal.startSleep(this.#q, this.#run.id, idx, unique, wakeAt);
    }
    const wait = wakeAt.getTime() - Date.now();
    if (wait > this.#inlineWaitMaxMs) this.#stop(new Suspend('sleep', wakeAt));
    if (wait > 0) await pause(wait, this.#signal);
    if (this.#signal.aborted) this.#stop(new Suspend('shutdown', new Date()));
    await this.settle();
    await journal.succeedStep(this.#q, this.#run.id, idx, unique, null);
  }
}
