/**
 * The workflow API: `defineWorkflow({ name, version, description, input, run })`.
 *
 * A workflow is a TypeScript function of durable steps. After any interruption it is replayed
 * from the top: completed steps return their recorded (JSON) output, and execution continues at
 * the first unfinished step. So the function must be deterministic apart from its steps: branch
 * on step results, `ctx.now()` and `ctx.randomUUID()`, never on `Date.now()`, `Math.random()` or
 * I/O outside a step.
 */
import type { z } from 'zod';
import { TollgateError } from '../common/errors.ts';
import type { ApprovalOptions, ApprovalResult } from '../approvals/types.ts';
import type { ApprovalPolicy } from '../db/queries/approvals.ts';
import type { Logger } from '../common/log.ts';
import type { PromptRef } from '../model/types.ts';
import type { Duration } from './duration.ts';

export interface RetryPolicy {
  /** Attempts in all, the first included. Default 3. */
  maxAttempts?: number;
  /** Delay before the 2nd attempt. Default 200 ms. */
  initialDelayMs?: number;
  /** Growth of the delay per attempt. Default 2. */
  factor?: number;
  /** Upper bound of one delay. Default 60 s. */
  maxDelayMs?: number;
  /** Random spread of each delay, as a fraction (0.2 = ±20%). Default 0.2. */
  jitter?: number;
}

export interface StepContext {
  readonly runId: string;
  readonly step: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /**
   * Stable for this step of this run across attempts and crashes, different for every other step
   * and run: pass it on to the outside world (an `Idempotency-Key` header, a unique column).
   */
  readonly idempotencyKey: string;
  /** Aborted when the attempt times out or the worker shuts down. */
  readonly signal: AbortSignal;
  readonly log: Logger;
}

export interface CompensationContext extends StepContext {
  /** The recorded output of the step being compensated. */
  readonly output: unknown;
}

export interface StepOptions {
  retry?: RetryPolicy;
  /** Each attempt is abandoned (and counts as failed) after this long. */
  timeoutMs?: number;
  /**
   * Undo for this step, run (durably, retried like a step) in reverse order of completion when
   * the run fails for good or is cancelled.
   */
  compensate?: (ctx: CompensationContext) => unknown; // may return a promise (awaited)
  /** Retry policy for the compensation; defaults to the step's. */
  compensateRetry?: RetryPolicy;
  /**
   * What a person may do when this step fails for good (docs/operator-control.md). Off by default.
   * With any of them on, the step's failure holds the run's undo: the run ends failed with its
   * completed steps kept, for a person to Retry, Edit and retry, or take one of these.
   */
  resolvable?: Resolvable & {
    /** The output a person gives with "Resolve by hand" must match this schema. */
    output?: z.ZodType;
  };
}

/** The resolutions a step allows a person (operators) when it fails for good. All off by default. */
export interface Resolvable {
  /** "Resolve by hand": mark the step done with the output the rest of the run needs. */
  byHand?: boolean;
  /** "Skip and compensate": end the run, undoing its completed steps. */
  skip?: boolean;
  /** "Give up": end the run failed, nothing undone, for a person to finish. */
  giveUp?: boolean;
}

export interface ToolCallOptions {
  retry?: RetryPolicy;
  timeoutMs?: number;
  /** Undo this call with the tool's own compensation when the run fails for good or is cancelled. */
  compensate?: boolean;
  /**
   * What a person may do when this call fails for good (see `StepOptions.resolvable`); off by
   * default, and meant to stay off for a write tool unless a person can truly stand in for it.
   * "Resolve by hand" is checked against the tool's output schema.
   */
  resolvable?: Resolvable;
}

// Durations are src/runtime/duration.ts's (src/approvals/types.ts needs them without this module).
export { parseDuration, type Duration } from './duration.ts';

/** Options of a model step (`ctx.model.extract`, `classify`, `generate`). */
export interface ModelStepOptions {
  /**
   * Which prompt this is, recorded with every call: change the version whenever the wording (the
   * instructions, the schema's descriptions) changes, so the journal tells calls apart.
   */
  prompt: PromptRef;
  /**
   * What the model is told to do (its system message; never redacted: written by you, never by
   * users). extract and classify have a default; for generate the first argument is the prompt.
   */
  instructions?: string;
  /** The step's name in the journal; default `model:<prompt.name>`. */
  name?: string;
  /** Attempts of the step (each a recorded call); the client's own HTTP retries come on top. */
  retry?: RetryPolicy;
  /** Each attempt is abandoned after this long (the client's TOLLGATE_MODEL_TIMEOUT_MS applies too). */
  timeoutMs?: number;
  /** Upper bound of the answer's tokens: sent with a text call, and used for the cost estimate. */
  maxOutputTokens?: number;
}

/**
 * Model steps: durable, memoized journal steps of kind 'model'. The input is redacted before it
 * is sent (and the workflow's `neverSend` fields withheld), the answer is checked against the
 * schema, re-hydrated and recorded as the step's output; every call is recorded as a
 * `model.called` event (redacted). After success a replay returns the recorded output and never
 * calls the model again. The model's answer is data: it can fill a schema, never approve or call
 * a tool.
 */
export interface ModelSteps {
  /** Reads the fields of `schema` from `input`; the answer is validated with `schema` itself. */
  extract<S extends z.ZodObject>(schema: S, input: unknown, options: ModelStepOptions): Promise<z.infer<S>>;
  /** Picks exactly one of `labels` for `input`. */
  classify<L extends string>(labels: readonly [L, ...L[]], input: unknown, options: ModelStepOptions): Promise<L>;
  /** Free text: `prompt` is the instructions (the system message), `input` the data it works on. */
  generate(prompt: string, input: unknown, options: ModelStepOptions): Promise<string>;
}

/** A per-run cost budget for model steps (`defineWorkflow({ budget })`). */
export interface ModelBudget {
  /** USD the run's model calls may cost in all, from `model.prices` in the project configuration. */
  maxCostUsd: number;
  /**
   * Who may let a model step go past the budget: a step whose estimated cost would take the run
   * over it first waits for an approval by this policy (and fails for good if it is rejected).
   */
  approval: ApprovalPolicy;
}

export interface WorkflowContext<I> {
  readonly runId: string;
  readonly workflow: string;
  readonly version: number;
  readonly input: I;
  readonly log: Logger;
  /** A durable step: runs until it succeeds once, then returns its recorded output forever after. */
  step<T>(name: string, fn: (ctx: StepContext) => Promise<T> | T, options?: StepOptions): Promise<T>;
  /** A durable timer: the run waits (holding no worker) and resumes after `duration`. */
  sleep(name: string, duration: Duration): Promise<void>;
  /**
   * An approval gate: the run waits (holding no worker) until the policy is satisfied, someone
   * allowed rejects, or the timeout applies. Returns the decision; a rejection or expiry is
   * returned (`approved: false`), not thrown, so the workflow decides what follows.
   */
  approval(name: string, options: ApprovalOptions): Promise<ApprovalResult>;
  /**
   * Calls a tool the workflow lists, as a durable step named after the tool: input and output
   * are validated and recorded; a write needs an approved gate bound to this exact input.
   */
  tool<T = unknown>(name: string, input: unknown, options?: ToolCallOptions): Promise<T>;
  /** The current time, recorded on first execution and the same on every replay. */
  now(): Date;
  /** A random UUID, recorded on first execution and the same on every replay. */
  randomUUID(): string;
  /** Model steps: extract, classify, generate (see `ModelSteps`). */
  readonly model: ModelSteps;
}

export interface WorkflowDefinition<S extends z.ZodType = z.ZodType, O = unknown> {
  readonly name: string;
  readonly version: number;
  readonly description: string;
  readonly input: S;
  /** Names of the tools this workflow may call (invariant 7); empty when it calls none. */
  readonly tools: readonly string[];
  /** Input fields whose values are never sent to a model, not even as a placeholder; empty when none. */
  readonly neverSend: readonly string[];
  /** The run's cost budget for model steps, if any. */
  readonly budget?: ModelBudget;
  readonly run: (ctx: WorkflowContext<z.infer<S>>) => Promise<O>;
}

export interface WorkflowSpec<S extends z.ZodType, O> {
  name: string;
  version: number;
  description: string;
  input: S;
  tools?: readonly string[];
  /**
   * Input fields never sent to a model: wherever one of their values appears in a model step's
   * input it is replaced by `[[WITHHELD]]` before anything leaves the machine.
   */
  neverSend?: readonly string[];
  budget?: ModelBudget;
  run: (ctx: WorkflowContext<z.infer<S>>) => Promise<O>;
}

const NAME = /^[a-z][a-z0-9-]{0,62}$/;

export function defineWorkflow<S extends z.ZodType, O>(spec: WorkflowSpec<S, O>): WorkflowDefinition<S, O> {
  if (!NAME.test(spec.name)) {
    throw new TollgateError(
      'TG_WORKFLOW_INVALID',
      `Workflow name "${spec.name}" is invalid: use lowercase letters, digits and dashes, starting with a letter.`,
    );
  }
  if (!Number.isInteger(spec.version) || spec.version < 1) {
    throw new TollgateError('TG_WORKFLOW_INVALID', `Workflow "${spec.name}" has version ${String(spec.version)}: versions are integers from 1.`);
  }
  const neverSend = [...(spec.neverSend ?? [])];
  // A misspelt field would silently send what was meant to be withheld: refuse it at definition.
  const shape = (spec.input as { shape?: Record<string, unknown> }).shape;
  const unknown = shape ? neverSend.filter((f) => !(f in shape)) : [];
  if (unknown.length > 0) {
    throw new TollgateError(
      'TG_WORKFLOW_INVALID',
      `Workflow "${spec.name}" lists ${unknown.map((f) => `"${f}"`).join(', ')} in neverSend, which its input does not have (its fields: ${Object.keys(shape ?? {}).join(', ')}).`,
    );
  }
  if (spec.budget && !(Number.isFinite(spec.budget.maxCostUsd) && spec.budget.maxCostUsd >= 0)) {
    throw new TollgateError(
      'TG_WORKFLOW_INVALID',
      `Workflow "${spec.name}" has budget.maxCostUsd ${String(spec.budget.maxCostUsd)}: give a number of USD >= 0.`,
    );
  }
  return Object.freeze({ ...spec, tools: Object.freeze([...(spec.tools ?? [])]), neverSend: Object.freeze(neverSend) });
}
