/**
 * The executor: advances one run by replaying its workflow against the journal.
 *
 * General notes
 * - One executor per run (invariant 2). `advance()` first takes a session-level advisory lock on
 *   the run, on a connection it keeps for the whole advance, and writes every journal row through
 *   that same connection. If the process dies, PostgreSQL drops the connection and the lock with
 *   it; if the connection is lost, so is the ability to write: the lock fences the writes. A
 *   second advance of the same run waits for the lock (bounded) and then re-reads the state, so a
 *   wake-up that lands while another executor is finishing is never lost.
 * - Replay: the workflow function runs from the top. Each `ctx.step` takes its index from a
 *   counter before any `await`; a journal row at that index must carry the same name (else
 *   NondeterminismError). Completed steps return their recorded output; the first unfinished
 *   one executes. Its start is committed (with its event) before its body runs; its result is
 *   committed with the next step's start, in one statement, or with the run's end or suspension,
 *   or alone one event-loop turn after the step returns if the workflow does something else
 *   first, and always before any later journal write.
 * - Waiting (a sleep, a retry backoff, later an approval) ends the advance: the run is marked
 *   waiting, a timer job is scheduled, and no worker is held. Short waits (<= inlineWaitMaxMs)
 *   are slept in-process instead, after being recorded, because a scheduled job is only found by
 *   polling.
 * - Failure for good, or cancellation, runs the compensations of completed steps in reverse
 *   order, each recorded in the journal and retried like a step.
 *
 * - Approval gates (`ctx.approval`, src/approvals/gate.ts) are journal steps of kind 'approval'
 *   whose run suspends while the approval is pending; tool calls (`ctx.tool`, src/tools/invoke.ts)
 *   are steps of kind 'tool', checked before they run; model steps (`ctx.model`,
 *   src/model/steps.ts) are steps of kind 'model', each call recorded as a `model.called` event,
 *   behind a budget gate when the workflow has a budget (`Replay.model`).
 *
 * The executor never decides who may do what; approvals and tools enforce that before a step.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import {
  NondeterminismError,
  NonRetriableError,
  StepFailedError,
  StepTimeoutError,
  TollgateError,
  serializeError,
  type SerializedError,
} from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { cancelPendingApproval, runApprovalGate } from '../approvals/gate.ts';
import type { ApprovalOptions, ApprovalResult } from '../approvals/types.ts';
import { EMPTY_PROJECT_CONFIG, type ProjectConfig } from '../config/project-config.ts';
import { prepareToolCall, requireApproval, toolStep } from '../tools/invoke.ts';
import { builtinToolRegistry } from '../tools/index.ts';
import type { ToolRegistry } from '../tools/registry.ts';
import { ensureRunTraceContext, traceRunEnd, traceStepAttempt } from '../telemetry/tracing-spans.ts';
import { observeRunEnd, timeStepAttempt } from '../telemetry/metrics.ts';
import { listModelCalls, recordModelCall } from '../model/record.ts';
import { attemptModelStep, formatUsd, modelStepName, withheldValues, type ModelStepCall } from '../model/steps.ts';
import type { ModelClient } from '../model/types.ts';
import * as journal from '../db/queries/runs.ts';
import { isTerminalStatus as isTerminal } from '../db/queries/runs.ts';
import type { RunRow, StepRow } from '../db/queries/runs.ts';
import type { Queryable } from '../db/queryable.ts';
import type { WorkflowRegistry } from './registry.ts';
import { nextDelayMs, resolveRetry, type ResolvedRetry } from './retry.ts';
import {
  parseDuration,
  type CompensationContext,
  type Duration,
  type ModelBudget,
  type StepContext,
  type StepOptions,
  type ToolCallOptions,
  type WorkflowContext,
  type WorkflowDefinition,
} from './workflow.ts';

export interface ExecutorOptions {
  pool: pg.Pool;
  registry: WorkflowRegistry;
  log: Logger;
  /** Waits up to this long are slept in-process (after being recorded) instead of suspending. */
  inlineWaitMaxMs?: number;
  /** How long a second advance of a busy run waits for the lock before leaving it to the holder. */
  lockWaitMs?: number;
  /** Groups for approval policies, tool configuration. */
  project?: ProjectConfig;
  /** Tools workflows may call (each workflow still lists its own); the built-in ones by default. */
  tools?: ToolRegistry;
  /** Recoveries allowed per run before it is dead-lettered instead (see journal.claimRun); default 5. */
  maxRecoveries?: number;
  /** The model client of model steps; without one a model step fails for good (TG_MODEL_NOT_CONFIGURED). */
  model?: ModelClient;
}

export const DEFAULT_MAX_RECOVERIES = 5;

/** What a replay needs besides the journal: approvals resolve groups, tools get config and pool. */
interface ReplayEnv {
  pool: pg.Pool;
  project: ProjectConfig;
  tools: ToolRegistry;
  model: ModelClient | undefined;
}

export type AdvanceOutcome = 'finished' | 'waiting' | 'busy' | 'not-found' | 'already-finished' | 'dead-lettered';

/** Thrown through the workflow when the run must stop here and wait. */
class Suspend {
  constructor(
    readonly reason: string,
    readonly wakeAt: Date | null,
  ) {}
}
/** Thrown through the workflow when the run was cancelled. */
class Cancelled {}

interface Compensation {
  idx: number;
  name: string;
  output: unknown;
  fn: NonNullable<StepOptions['compensate']>;
  retry: ResolvedRetry;
  row: StepRow | undefined;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });

function journalUnreachable(runId: string, cause: unknown): TollgateError {
  return new TollgateError(
    'TG_DB_UNREACHABLE',
    `Run ${runId} paused: its journal could not be written (${(cause as Error).message}). It resumes when the database answers.`,
    { runId },
    { cause },
  );
}

/** A child logger made on first call, then kept. */
function lazyChild(parent: Logger, bindings: Record<string, unknown>): () => Logger {
  let child: Logger | undefined;
  return () => (child ??= parent.child(bindings));
}

/** Ends the run in the journal, then reports its duration to /metrics (src/telemetry/metrics.ts). */
async function finishRun(
  q: Queryable,
  run: RunRow,
  status: Parameters<typeof journal.finishRun>[2],
  result: Parameters<typeof journal.finishRun>[3],
  previous?: journal.StepSuccess,
): Promise<void> {
  await journal.finishRun(q, run.id, status, result, previous);
  observeRunEnd(run, status);
}

/** JSON round trip, so a live result equals what a replay will read back. */
function asJson<T>(value: T, what = 'A step output'): T {
  if (value === undefined) return value;
  const text = JSON.stringify(value);
  // PostgreSQL's jsonb cannot hold U+0000; storing it would fail the journal write on every retry.
  if (text.includes('\\u0000')) {
    throw new NonRetriableError(`${what} contains a NUL character (\\u0000), which PostgreSQL cannot store. Encode binary data (e.g. base64) before returning it.`);
  }
  return JSON.parse(text) as T;
}

export class Executor {
  readonly #pool: pg.Pool;
  readonly #registry: WorkflowRegistry;
  readonly #log: Logger;
  readonly #inlineWaitMaxMs: number;
  readonly #lockWaitMs: number;
  readonly #maxRecoveries: number;
  readonly #env: ReplayEnv;

  constructor(opts: ExecutorOptions) {
    this.#env = { pool: opts.pool, project: opts.project ?? EMPTY_PROJECT_CONFIG, tools: opts.tools ?? builtinToolRegistry(), model: opts.model };
    this.#pool = opts.pool;
    this.#registry = opts.registry;
    this.#log = opts.log;
    this.#inlineWaitMaxMs = opts.inlineWaitMaxMs ?? 2000;
    this.#lockWaitMs = opts.lockWaitMs ?? 10_000;
    this.#maxRecoveries = opts.maxRecoveries ?? DEFAULT_MAX_RECOVERIES;
  }

  /** Advances the run as far as it can go now. Safe to call any number of times, concurrently. */
  async advance(runId: string, executorId: string, signal?: AbortSignal): Promise<AdvanceOutcome> {
    const client = await this.#pool.connect();
    let failed = false;
    try {
      if (!(await this.#lock(client, runId))) return 'busy';
      try {
        return await traceRunEnd(client, runId, await this.#execute(client, runId, executorId, signal ?? new AbortController().signal));
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [runId]).catch(() => {
          failed = true;
        });
      }
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      // After any error the connection is suspect: destroy it (PostgreSQL then drops any lock it
      // still held) rather than hand it back to the pool.
      client.release(failed);
    }
  }

  async #lock(client: pg.PoolClient, runId: string): Promise<boolean> {
    const tried = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [runId]);
    if (tried.rows[0]?.ok) return true;
    // Another executor holds the run. Wait for it: if it is about to let go, this advance must
    // see what woke it. If it holds on past the wait, it is mid-step and will re-read the state
    // itself before it finishes.
    try {
      await client.query(`SET lock_timeout = ${Math.floor(this.#lockWaitMs)}`);
      await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [runId]);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === '55P03') return false;
      throw e;
    } finally {
      await client.query('RESET lock_timeout');
    }
  }

  async #execute(q: pg.PoolClient, runId: string, executorId: string, signal: AbortSignal): Promise<AdvanceOutcome> {
    const claim = await journal.claimRun(q, runId, executorId, this.#registry.keys(), this.#maxRecoveries);
    if (!claim.run) return 'not-found';
    // Dead-lettered now by this claim, or earlier: either way the job ends without running the
    // workflow (retrying the job could not help; only a person's retry or cancel re-queues it).
    if (claim.run.status === 'dead_letter') {
      if (claim.previous) {
        const error = claim.run.error as SerializedError | null;
        this.#log.error({ runId, workflow: claim.run.workflow, recoveries: claim.run.recovery_attempts, details: error?.details }, 'run dead-lettered: interrupted again after too many recoveries');
      }
      return 'dead-lettered';
    }
    if (!claim.previous) {
      if (isTerminal(claim.run.status)) return 'already-finished';
      // Not runnable here: this worker lacks the run's workflow version (a rolling deploy, or a
      // worker with other workflows). The job fails and is retried, by a worker that has it.
      this.#registry.get(claim.run.workflow, claim.run.workflow_version);
      throw new TollgateError('TG_WORKFLOW_UNKNOWN', `Run ${runId} could not be claimed (status ${claim.run.status}).`, { runId });
    }
    const run = claim.run;
    await ensureRunTraceContext(q, run);
    const log = this.#log.child({ runId, workflow: run.workflow, version: run.workflow_version });
    if (claim.previous === 'running' || claim.previous === 'compensating') log.warn({ recoveryAttempts: run.recovery_attempts }, 'resuming an interrupted run');
    const def = this.#registry.get(run.workflow, run.workflow_version);

    const steps = claim.hasSteps ? await journal.loadSteps(q, runId) : [];
    const cancelling = run.cancel_requested_at !== null || run.status === 'compensating';
    const replay = new Replay(q, run, def, steps, log, signal, this.#inlineWaitMaxMs, cancelling, this.#env);
    let outcome: { kind: 'ok'; output: unknown } | { kind: 'error'; error: unknown };
    try {
      const output = await def.run(replay.context);
      outcome = replay.stopped ? { kind: 'error', error: replay.stopped } : { kind: 'ok', output };
    } catch (e) {
      outcome = { kind: 'error', error: replay.stopped ?? e };
    }
    // The last step's success, if not written yet, goes out with the run's end or suspension (one
    // commit instead of two); on the other paths it is written on its own first.
    let lastSuccess: journal.StepSuccess | undefined;
    if (!replay.journalError) {
      try {
        await replay.flush();
        lastSuccess = await replay.takeUnwritten();
      } catch (e) {
        replay.journalError ??= e;
      }
    }
    // The journal could not be written (database down, connection lost). Nothing about the run
    // is decided on that basis: it stays as recorded and the job's retry (or recovery after a
    // crash) resumes it, re-running the interrupted step with the same idempotency key.
    if (replay.journalError) throw journalUnreachable(runId, replay.journalError);
    /**
     * Ends the advance with `write`, which also writes the last step's success. Should that
     * statement fail (an event refused, a lost connection), the success is written alone before
     * the error is rethrown, so a step that completed is not run again by the retry.
     */
    const end = async (write: (previous: journal.StepSuccess | undefined) => Promise<void>) => {
      try {
        await write(lastSuccess);
      } catch (e) {
        if (!lastSuccess) throw e;
        try {
          await journal.succeedStep(q, runId, lastSuccess.idx, lastSuccess.name, lastSuccess.output);
        } catch (e2) {
          throw journalUnreachable(runId, e2);
        }
        throw e;
      }
    };

    if (outcome.kind === 'ok') {
      const leftover = steps.find((s) => s.idx >= replay.counter);
      if (leftover) {
        outcome = { kind: 'error', error: new NondeterminismError(runId, leftover.idx, leftover.name, '(end of workflow)') };
      } else {
        let output: unknown;
        try {
          output = asJson(outcome.output, 'The run output') ?? null;
        } catch (e) {
          outcome = { kind: 'error', error: e };
        }
        if (outcome.kind === 'ok') {
          await end((previous) => finishRun(q, run, 'succeeded', { output }, previous));
          log.info('run succeeded');
          return 'finished';
        }
      }
    }
    const err = outcome.error;
    if (err instanceof Suspend) {
      await end((previous) => journal.suspendRun(q, runId, err.reason, err.wakeAt, previous));
      log.debug({ reason: err.reason, wakeAt: err.wakeAt }, 'run waiting');
      return 'waiting';
    }
    if (lastSuccess) {
      await journal.succeedStep(q, runId, lastSuccess.idx, lastSuccess.name, lastSuccess.output).catch((e: unknown) => {
        throw journalUnreachable(runId, e);
      });
    }
    const cancelled = err instanceof Cancelled;
    const error: SerializedError | undefined = cancelled ? undefined : serializeError(err);
    if (!cancelled) log.warn({ err: error }, 'run failed');
    return this.#compensateAndEnd(q, run, replay, log, cancelled, error, signal);
  }

  async #compensateAndEnd(
    q: Queryable,
    run: RunRow,
    replay: Replay,
    log: Logger,
    cancelled: boolean,
    error: SerializedError | undefined,
    signal: AbortSignal,
  ): Promise<AdvanceOutcome> {
    const todo = replay.compensations.filter((c) => c.row?.status !== 'compensated').reverse();
    if (todo.length === 0) {
      await finishRun(q, run, cancelled ? 'cancelled' : 'failed', { error: error ?? null });
      return 'finished';
    }
    await q.query(
      `WITH r AS (UPDATE tollgate.runs SET status = 'compensating', error = coalesce($2, error), updated_at = now() WHERE id = $1 AND status <> 'compensating' RETURNING id)
       INSERT INTO tollgate.events (run_id, type, payload) SELECT id, 'run.compensating', jsonb_build_object('steps', $3::int, 'reason', $4::text) FROM r`,
      [run.id, error ? JSON.stringify(error) : null, todo.length, cancelled ? 'cancelled' : 'failed'],
    );
    for (const c of todo) {
      const ok = await this.#runCompensation(q, run, c, log, signal);
      if (!ok) {
        const e = new TollgateError(
          'TG_STEP_FAILED',
          `Compensation of step "${c.name}" failed after ${c.retry.maxAttempts} attempt(s); the run's effects are only partly undone. ` +
            'A person must finish the undo by hand (see the step error in `tollgate runs show`).',
          { runId: run.id, step: c.name },
        );
        await finishRun(q, run, 'compensation_failed', { error: { ...serializeError(e), cause: error } });
        log.error({ step: c.name }, 'compensation failed: needs a person');
        return 'finished';
      }
    }
    await finishRun(q, run, cancelled ? 'cancelled' : 'compensated', { error: error ?? null });
    return 'finished';
  }

  async #runCompensation(q: Queryable, run: RunRow, c: Compensation, parentLog: Logger, signal: AbortSignal): Promise<boolean> {
    const log = parentLog.child({ step: c.name, compensation: true });
    for (let attempt = 1; attempt <= c.retry.maxAttempts; attempt++) {
      if (signal.aborted) {
        // Shutting down: leave the run 'compensating'; the next worker resumes the undo here.
        throw new TollgateError('TG_RUN_BUSY', `Worker shutting down during the compensation of run ${run.id}; another worker resumes it.`, { runId: run.id });
      }
      await q.query(
        `WITH s AS (UPDATE tollgate.steps SET status = 'compensating', updated_at = now() WHERE run_id = $1 AND idx = $2 RETURNING run_id, idx)
         INSERT INTO tollgate.events (run_id, type, step_idx, payload) SELECT run_id, 'step.compensating', idx, jsonb_build_object('step', $3::text, 'attempt', $4::int) FROM s`,
        [run.id, c.idx, c.name, attempt],
      );
      const ac = new AbortController();
      const onShutdown = () => ac.abort(new Error('worker shutting down'));
      signal.addEventListener('abort', onShutdown, { once: true });
      const ctx: CompensationContext = {
        runId: run.id,
        step: c.name,
        attempt,
        idempotencyKey: `${run.id}:${c.idx}:undo`,
        signal: ac.signal,
        log,
        output: c.output,
      };
      let undone = false;
      try {
        await c.fn(ctx);
        undone = true;
      } catch (e) {
        const last = attempt >= c.retry.maxAttempts || e instanceof NonRetriableError;
        await q.query(
          `WITH s AS (UPDATE tollgate.steps SET status = $5, error = $4, updated_at = now() WHERE run_id = $1 AND idx = $2 RETURNING run_id, idx)
           INSERT INTO tollgate.events (run_id, type, step_idx, payload) SELECT run_id, 'step.compensation_failed', idx,
             jsonb_build_object('step', $3::text, 'attempt', $6::int, 'final', $7::boolean, 'error', $4::jsonb) FROM s`,
          [run.id, c.idx, c.name, JSON.stringify(serializeError(e)), last ? 'compensation_failed' : 'compensating', attempt, last],
        );
        log.warn({ err: e, attempt }, 'compensation attempt failed');
        if (last) return false;
        await sleep(nextDelayMs(c.retry, attempt, e), signal);
      } finally {
        signal.removeEventListener('abort', onShutdown);
      }
      if (undone) {
        // Outside the try: a failed write here is a database problem, not a failed undo, and
        // must not be counted as an attempt (the advance fails and the undo is resumed).
        await q.query(
          `WITH s AS (UPDATE tollgate.steps SET status = 'compensated', updated_at = now() WHERE run_id = $1 AND idx = $2 RETURNING run_id, idx)
           INSERT INTO tollgate.events (run_id, type, step_idx, payload) SELECT run_id, 'step.compensated', idx, jsonb_build_object('step', $3::text, 'attempt', $4::int) FROM s`,
          [run.id, c.idx, c.name, attempt],
        );
        return true;
      }
    }
    return false;
  }
}

/**
 * One replay of one run: implements the workflow context against the journal.
 */
class Replay {
  readonly context: WorkflowContext<unknown>;
  counter = 0;
  stopped: Suspend | Cancelled | NondeterminismError | undefined;
  /** Set when a journal write failed: the replay's outcome then means nothing. */
  journalError: unknown;
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
    if (this.stopped) throw this.stopped;
    // A journal write failed: nothing more may run on a journal that is missing a record (the
    // workflow could otherwise catch the error and act as if the earlier step had not happened).
    if (this.journalError) throw this.journalError;
    const seen = (this.#names.get(name) ?? 0) + 1;
    this.#names.set(name, seen);
    const unique = seen === 1 ? name : `${name}:${seen}`;
    const idx = this.counter++;
    const row = this.#journal.get(idx);
    if (row && row.name !== unique) {
      this.stopped = new NondeterminismError(this.#run.id, idx, row.name, unique);
      throw this.stopped;
    }
    return { idx, name: unique, row };
  }

  #stop(signal: Suspend | Cancelled): never {
    this.stopped = signal;
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
    const before = call.effect === 'write' ? async () => { await requireApproval(this.#q, this.#run.id, claimed.idx, call); } : undefined;
    // The tool's version goes into each attempt's chained step.started event: the evidence of which version ran.
    const started = { tool: call.tool.name, toolVersion: call.tool.version };
    return this.#runStep(claimed, run, { retry: options.retry, timeoutMs: options.timeoutMs, compensate: options.compensate ? compensate : undefined }, 'tool', call.input, before, started);
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
        await recordModelCall(q, { runId: this.#run.id, stepIdx: claimed.idx, actor: null, context: { stepIdx: claimed.idx, step: claimed.name, attempt: ctx.attempt } }, attempt.record);
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
    const decision = (await this.#valueOf('budget', `budget-check:${step}`, async () => {
      const client = this.#env.model;
      // No model: the step fails for good on its own, with the reason; there is nothing to spend.
      if (!client?.configured) return { gate: false, estimateUsd: null, spentUsd: 0, maxCostUsd: budget.maxCostUsd };
      const estimateUsd = client.estimateCostUsd(call.input, call.options.maxOutputTokens);
      const calls = await listModelCalls(this.#q, this.#run.id);
      const spentUsd = calls.reduce((sum, c) => sum + (c.costUsd ?? 0), 0);
      const gate = estimateUsd === null || spentUsd + estimateUsd > budget.maxCostUsd;
      return { gate, model: client.model ?? null, estimateUsd, spentUsd, maxCostUsd: budget.maxCostUsd };
    })) as { gate: boolean; model?: string | null; estimateUsd: number | null; spentUsd: number; maxCostUsd: number };
    if (!decision.gate) return;
    const over =
      decision.estimateUsd === null
        ? `its cost cannot be estimated (no price for model ${decision.model ?? '?'} in model.prices), so the budget of ${formatUsd(decision.maxCostUsd)} cannot be checked`
        : `its estimated ${formatUsd(decision.estimateUsd)} would take the run past its budget of ${formatUsd(decision.maxCostUsd)} (${formatUsd(decision.spentUsd)} spent so far)`;
    const gate = await this.approval(`budget:${step}`, {
      policy: budget.approval,
      summary: `Model step "${step}" of ${this.#def.name}: ${over}.`,
      params: {
        step,
        model: decision.model ?? null,
        estimate: formatUsd(decision.estimateUsd),
        spent: formatUsd(decision.spentUsd),
        budget: formatUsd(decision.maxCostUsd),
      },
      risk: 'medium',
      rationale: `Workflow ${this.#def.name} allows ${formatUsd(decision.maxCostUsd)} of model calls per run; approving lets this step's call go ahead.`,
    });
    if (gate.approved) return;
    const why = gate.status === 'expired' ? `approval ${gate.approvalId} expired with no decision` : `${gate.by ?? 'an approver'} rejected approval ${gate.approvalId}${gate.comment ? `: "${gate.comment}"` : ''}`;
    // TG_APPROVAL_REJECTED: a retry would meet the same decision (src/runtime/retryable.ts).
    throw new NonRetriableError(`Model step "${step}" not run: ${over}, and ${why}.`, undefined, 'TG_APPROVAL_REJECTED', {
      runId: this.#run.id,
      step,
      approvalId: gate.approvalId,
      status: gate.status,
      by: gate.by,
      estimateUsd: decision.estimateUsd,
      spentUsd: decision.spentUsd,
      maxCostUsd: decision.maxCostUsd,
    });
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
        this.compensations.push({ idx, name: unique, output: row.output, fn: options.compensate, retry: resolveRetry(options.compensateRetry ?? options.retry), row });
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

    let attempt = (row?.attempts ?? 0) + 1;
    let notBefore = row?.next_attempt_at ?? null;
    // Made on first use: most steps never log, and a pino child per step is measurable on the hot path.
    const log = lazyChild(this.#log, { step: unique });
    for (;;) {
      if (notBefore) {
        const wait = notBefore.getTime() - Date.now();
        if (wait > this.#inlineWaitMaxMs) this.#stop(new Suspend('retry', notBefore));
        if (wait > 0) await sleep(wait, this.#signal);
        if (this.#signal.aborted) this.#stop(new Suspend('shutdown', new Date()));
      }
      await this.flush();
      if (input !== undefined) asJson(input, `The input of ${kind} "${unique}"`); // refused before it is recorded
      const previous = await this.takeUnwritten();
      const attemptStart = await journal.startStepAttempt(this.#q, { runId: this.#run.id, idx, name: unique, kind, attempt, input, started }, previous);
      if (attemptStart.cancelRequested) this.#stop(new Cancelled());
      try {
        const output = asJson(await timeStepAttempt(this.#run.workflow, kind, () => traceStepAttempt(this.#run, { name: unique, idx, attempt, kind }, () => this.#attempt(unique, idx, attempt, fn, options.timeoutMs, log))));
        this.#deferSuccess({ idx, name: unique, output });
        if (options.compensate) {
          this.compensations.push({ idx, name: unique, output, fn: options.compensate, retry: resolveRetry(options.compensateRetry ?? options.retry), row: undefined });
        }
        return output;
      } catch (e) {
        const final = e instanceof NonRetriableError || attempt >= retry.maxAttempts;
        const error = serializeError(e);
        if (final) {
          await journal.failStepAttempt(this.#q, this.#run.id, idx, unique, error, null);
          log().warn({ err: error, attempt }, 'step failed for good');
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

  async #attempt<T>(
    name: string,
    idx: number,
    attempt: number,
    fn: (ctx: StepContext) => Promise<T> | T,
    timeoutMs: number | undefined,
    log: () => Logger,
  ): Promise<T> {
    const ac = new AbortController();
    const onShutdown = () => ac.abort(new Error('worker shutting down'));
    this.#signal.addEventListener('abort', onShutdown, { once: true });
    const ctx: StepContext = {
      runId: this.#run.id,
      step: name,
      attempt,
      idempotencyKey: `${this.#run.id}:${idx}`,
      signal: ac.signal,
      get log() {
        return log();
      },
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      const body = Promise.resolve().then(() => fn(ctx));
      if (!timeoutMs) return await body;
      body.catch(() => {}); // a timed-out body may still reject later
      return await Promise.race([
        body,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const err = new StepTimeoutError(name, timeoutMs);
            ac.abort(err);
            reject(err);
          }, timeoutMs);
        }),
      ]);
    } finally {
      if (timer) clearTimeout(timer);
      this.#signal.removeEventListener('abort', onShutdown);
    }
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
    if (wait > 0) await sleep(wait, this.#signal);
    if (this.#signal.aborted) this.#stop(new Suspend('shutdown', new Date()));
    await this.settle();
    await journal.succeedStep(this.#q, this.#run.id, idx, unique, null);
  }
}

