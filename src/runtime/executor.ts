/**
 * The executor: advances one run by replaying its workflow against the journal.
 *
 * General notes
 * - One executor per run (invariant 2). `advance()` first takes a session-level advisory lock on
 *   the run (in the statement that claims it), on a connection it keeps for the whole advance, and
 *   writes every journal row through that same connection. If the process dies, PostgreSQL drops
 *   the connection and the lock with it; if the connection is lost, so is the ability to write:
 *   the lock fences the writes. A second advance of the same run waits for the lock (bounded) and
 *   then re-reads the state, so a wake-up that lands while another executor is finishing is never
 *   lost.
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
 *   order, each recorded in the journal and retried like a step (src/runtime/compensation.ts).
 * - The replay itself, the workflow's `ctx`, is `Replay` (src/runtime/replay.ts).
 *
 * - Approval gates (`ctx.approval`, src/approvals/gate.ts) are journal steps of kind 'approval'
 *   whose run suspends while the approval is pending; tool calls (`ctx.tool`, src/tools/invoke.ts)
 *   are steps of kind 'tool', checked before they run; model steps (`ctx.model`,
 *   src/model/steps.ts) are steps of kind 'model', each call recorded as a `model.called` event,
 *   behind a budget gate when the workflow has a budget (`Replay.model`).
 *
 * The executor never decides who may do what; approvals and tools enforce that before a step.
 */
import type pg from 'pg';
import { NondeterminismError, StepFailedError, TollgateError, serializeError, type SerializedError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { followAbort } from '../common/abort.ts';
import { EMPTY_PROJECT_CONFIG, type ProjectConfig } from '../config/project-config.ts';
import { builtinToolRegistry } from '../tools/index.ts';
import type { ToolRegistry } from '../tools/registry.ts';
import { ensureRunTraceContext, traceRunEnd } from '../telemetry/tracing-spans.ts';
import type { ModelClient } from '../model/types.ts';
import * as journal from '../db/queries/runs.ts';
import { isTerminalStatus as isTerminal } from '../db/queries/runs.ts';
import type { RunRow, RunStatus, StepRow } from '../db/queries/runs.ts';
import { lockRunWithin, unlockRun } from '../db/queries/run-lock.ts';
import type { Queryable } from '../db/queryable.ts';
import { compensateAndEnd } from './compensation.ts';
import type { WorkflowRegistry } from './registry.ts';
import { Cancelled, Replay, Suspend, asJson, type ReplayEnv } from './replay.ts';
import { finishRun, journalUnreachable } from './run-end.ts';
import { holdRun, type HeldStep } from '../db/queries/rerun.ts';
import { rewindRun } from './rewind.ts';

/** Whether the run failed at a step that allows a person's resolution (and so keeps its undo for them). */
function holdsUndo(run: RunRow, replay: Replay, err: unknown): boolean {
  if (!replay.held || run.cancel_requested_at) return false;
  return err instanceof StepFailedError && err.details.step === replay.held.name;
}
import { releaseHeldResults } from './step-attempt.ts';

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

export type AdvanceOutcome = 'finished' | 'waiting' | 'busy' | 'not-found' | 'already-finished' | 'dead-lettered';

/** How the workflow function ended on this replay. */
type WorkflowOutcome = { kind: 'ok'; output: unknown } | { kind: 'error'; error: unknown };

/** A run this advance claimed and may execute. */
interface Claimed {
  run: RunRow;
  previous: RunStatus;
  hasSteps: boolean;
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

  /**
   * Advances the run as far as it can go now. Safe to call any number of times, concurrently.
   * `waitForLock: false` answers 'busy' at once when another executor holds the run (the inline
   * advance of a click, src/worker/one-hop.ts, then leaves the run to its advance job).
   */
  async advance(runId: string, executorId: string, signal?: AbortSignal, opts: { waitForLock?: boolean } = {}): Promise<AdvanceOutcome> {
    const client = await this.#pool.connect();
    let failed = false;
    try {
      // The lock and the claim in one statement; when the lock is taken, wait for it (or not) and claim after.
      let claim = await this.#claim(client, runId, executorId, true);
      if (claim === 'busy') {
        if (!(await this.#lock(client, runId, opts.waitForLock ?? true))) return 'busy';
        claim = await this.#claim(client, runId, executorId, false);
      }
      // The worker's signal is shared by every job of its pool for the pool's life: the advance
      // listens to it once, and its steps, waits and undos listen to the advance's own signal.
      const own = followAbort(signal);
      try {
        const outcome = await traceRunEnd(client, runId, await this.#execute(client, runId, claim, own.signal));
        releaseHeldResults(runId); // every success of this advance is recorded now
        return outcome;
      } finally {
        own.release();
        await unlockRun(client, runId).catch(() => {
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

  /** Waits for the run's lock, which another executor held when this advance tried it. */
  async #lock(client: pg.PoolClient, runId: string, wait: boolean): Promise<boolean> {
    if (!wait) return false;
    // Another executor holds the run. Wait for it: if it is about to let go, this advance must
    // see what woke it. If it holds on past the wait, it is mid-step and will re-read the state
    // itself before it finishes.
    return lockRunWithin(client, runId, this.#lockWaitMs);
  }

  async #execute(q: pg.PoolClient, runId: string, claim: Claimed | AdvanceOutcome, signal: AbortSignal): Promise<AdvanceOutcome> {
    if (typeof claim === 'string') return claim;
    let run = claim.run;
    await ensureRunTraceContext(q, run);
    const log = this.#log.child({ runId, workflow: run.workflow, version: run.workflow_version });
    if (claim.previous === 'running' || claim.previous === 'compensating') log.warn({ recoveryAttempts: run.recovery_attempts }, 'resuming an interrupted run');
    const def = this.#registry.get(run.workflow, run.workflow_version);
    // An edit's undo first (Edit and retry, src/runtime/rewind.ts): the journal then holds only the steps kept.
    if (run.rewind) {
      releaseHeldResults(runId); // results held before the edit belong to the steps it forgets
      const rewound = await rewindRun(q, run, def, log, signal, this.#inlineWaitMaxMs, this.#env);
      if (!rewound) return 'finished';
      run = rewound;
    }

    const steps = claim.hasSteps ? await journal.loadSteps(q, runId) : [];
    const cancelling = run.cancel_requested_at !== null || run.status === 'compensating';
    const replay = new Replay(q, run, def, steps, log, signal, this.#inlineWaitMaxMs, cancelling, this.#env);
    let outcome: WorkflowOutcome;
    try {
      const output = await def.run(replay.context);
      outcome = replay.stopped ? { kind: 'error', error: replay.stopped } : { kind: 'ok', output };
    } catch (e) {
      outcome = { kind: 'error', error: replay.stopped ?? e };
    }
    return this.#conclude(q, run, replay, steps, outcome, log, signal);
  }

  /**
   * Claims the run for this executor (src/db/queries/runs.ts `claimRun`), or says why this advance
   * ends without running it. `tryLock`: takes the run's lock in the same statement, 'busy' when
   * another executor holds it.
   */
  async #claim(q: Queryable, runId: string, executorId: string, tryLock: boolean): Promise<Claimed | AdvanceOutcome> {
    const claim = await journal.claimRun(q, runId, executorId, this.#registry.keys(), this.#maxRecoveries, tryLock);
    if (claim.busy) return 'busy';
    if (!claim.run) return 'not-found';
    // Dead-lettered now by this claim, or earlier: either way the job ends without running the
    // workflow (retrying the job could not help; only a person's retry or cancel re-queues it).
    if (claim.run.status === 'dead_letter') {
      if (claim.previous) {
        const error = claim.run.error as SerializedError | null;
        this.#log.error(
          { runId, workflow: claim.run.workflow, recoveries: claim.run.recovery_attempts, details: error?.details },
          'run dead-lettered: interrupted again after too many recoveries',
        );
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
    return claim;
  }

  /** Records how the replay ended: the run's success, its wait, or its failure and undo. */
  async #conclude(
    q: Queryable,
    run: RunRow,
    replay: Replay,
    steps: StepRow[],
    outcome: WorkflowOutcome,
    log: Logger,
    signal: AbortSignal,
  ): Promise<AdvanceOutcome> {
    const runId = run.id;
    const lastSuccess = await takeLastSuccess(replay, runId);
    const end = (write: (previous: journal.StepSuccess | undefined) => Promise<void>) => endWith(q, runId, lastSuccess, write);

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
    if (!cancelled && holdsUndo(run, replay, err)) {
      // The failed step lets a person resolve it: the undo waits for their choice (docs/operator-control.md).
      await holdRun(q, runId, replay.held as HeldStep);
      await finishRun(q, run, 'failed', { error: error ?? null });
      return 'finished';
    }
    return compensateAndEnd(q, run, replay, log, cancelled, error, signal);
  }
}

/**
 * Writes the replay's pending values and step successes but the last, and returns that last one:
 * it goes out with the run's end or suspension (one commit instead of two); on the other paths it
 * is written on its own first.
 *
 * When the journal could not be written (database down, connection lost), nothing about the run
 * is decided on that basis: it stays as recorded and the job's retry (or recovery after a crash)
 * resumes it, re-running the interrupted step with the same idempotency key.
 */
async function takeLastSuccess(replay: Replay, runId: string): Promise<journal.StepSuccess | undefined> {
  let lastSuccess: journal.StepSuccess | undefined;
  if (!replay.journalError) {
    try {
      await replay.flush();
      lastSuccess = await replay.takeUnwritten();
    } catch (e) {
      replay.journalError ??= e;
    }
  }
  if (replay.journalError) throw journalUnreachable(runId, replay.journalError);
  return lastSuccess;
}

/**
 * Ends the advance with `write`, which also writes the last step's success. Should that
 * statement fail (an event refused, a lost connection), the success is written alone before
 * the error is rethrown, so a step that completed is not run again by the retry.
 */
async function endWith(
  q: Queryable,
  runId: string,
  lastSuccess: journal.StepSuccess | undefined,
  write: (previous: journal.StepSuccess | undefined) => Promise<void>,
): Promise<void> {
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
}
