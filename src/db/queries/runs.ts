/**
 * Runs, steps and their events (`tollgate.runs`, `tollgate.steps`, reads of `tollgate.events`):
 * the journal, the runtime's reads and a person's changes (cancel, retry), the stuck-run sweep's
 * query and the run's trace context. Each function that changes a run's state is one statement
 * that also appends the matching event (data-modifying CTEs, `INSERT_EVENTS`), so the two commit
 * together (invariant 1) at the cost of a single round trip; a caller that appends its event on
 * its own (`appendEvent`) does so in the same transaction. Nothing here decides anything; the
 * executor and the runtime do. The undo's statements are in compensation.ts, the advance's
 * advisory lock in run-lock.ts, its job in jobs.ts.
 */
import type { Queryable } from '../queryable.ts';
import { INSERT_EVENTS } from './events.ts';
import { ADVANCE_TASK, newKeyedJobs } from './jobs.ts';
import { prepared } from './prepared.ts';

// Still importable from here (src/chat/intake-writes.ts), though src/db/queries/jobs.ts holds it now.

export const TERMINAL_STATUSES = ['succeeded', 'failed', 'cancelled', 'compensated', 'compensation_failed'] as const;
export function isTerminalStatus(status: string): boolean {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

/**
 * A run by id: the one read of `tollgate.runs` by its key. `lock` takes the row lock a caller's
 * transaction needs (`FOR UPDATE` to change its status, `FOR NO KEY UPDATE` to append to it).
 */
export async function readRun(q: Queryable, runId: string, lock?: 'FOR UPDATE' | 'FOR NO KEY UPDATE'): Promise<RunRow | undefined> {
  const { rows } = await q.query<RunRow>(`SELECT * FROM tollgate.runs WHERE id = $1${lock ? ` ${lock}` : ''}`, [runId]);
  return rows[0];
}

export type RunStatus =
  | 'queued'
  | 'running'
  | 'waiting'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'compensating'
  | 'compensated'
  | 'compensation_failed'
  /** Set aside after too many recoveries (see `claimRun`): not terminal, but never advanced or swept until retried or cancelled. */
  | 'dead_letter';

export type StepStatus = 'running' | 'retrying' | 'sleeping' | 'succeeded' | 'failed' | 'compensating' | 'compensated' | 'compensation_failed';

/**
 * The columns of `RunRow`, named, for the prepared statements that return a run (`claimRun`,
 * `insertQueuedRun`): a prepared `RETURNING *` fails once a migration adds a column (see
 * prepared.ts). A column added to `RunRow` that these callers need goes here too.
 */
const RUN_COLUMNS = [
  'id',
  'workflow',
  'workflow_version',
  'status',
  'wait_reason',
  'wake_at',
  'input',
  'output',
  'error',
  'requester',
  'origin',
  'cancel_requested_at',
  'cancel_requested_by',
  'executor',
  'recovery_attempts',
  'created_at',
  'updated_at',
  'started_at',
  'finished_at',
  'trace_context',
  'journal_purged_at',
  // Edit and retry, resolve by hand (migration 000022): the executor reads them from the claimed row.
  'generation',
  'rewind',
  'rewinds',
  'held',
] as const satisfies readonly (keyof RunRow)[];
const runColumns = (alias: string) => RUN_COLUMNS.map((c) => `${alias}.${c}`).join(', ');

export interface RunRow {
  id: string;
  workflow: string;
  workflow_version: number;
  status: RunStatus;
  wait_reason: string | null;
  wake_at: Date | null;
  input: unknown;
  output: unknown;
  error: unknown;
  requester: unknown;
  origin: unknown;
  cancel_requested_at: Date | null;
  cancel_requested_by: unknown;
  executor: string | null;
  recovery_attempts: number;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  /** The run's W3C trace context (src/telemetry/tracing-spans.ts); null when tracing was off. */
  trace_context?: unknown;
  /** When retention purged the run's journal (docs/operations.md#retention); null while it is kept. */
  journal_purged_at: Date | null;
  /** How many times an edit rewound the run (src/runtime/rewind.ts); part of re-run steps' idempotency keys. */
  generation?: number;
  /** An edit's undo waiting for the executor (src/db/queries/rerun.ts `PendingRewind`). */
  rewind?: unknown;
  /** The first forgotten step of each rewind, the k-th for generation k (src/runtime/step-attempt.ts `stepKey`). */
  rewinds?: number[];
  /** The failed step whose failure held the run's undo (src/db/queries/rerun.ts `HeldStep`). */
  held?: unknown;
}

export interface StepRow {
  run_id: string;
  idx: number;
  name: string;
  kind: string;
  status: StepStatus;
  input: unknown;
  output: unknown;
  error: unknown;
  attempts: number;
  next_attempt_at: Date | null;
  wake_at: Date | null;
  started_at: Date;
  finished_at: Date | null;
  updated_at: Date;
}

export interface EventRow {
  id: string;
  run_id: string | null;
  type: string;
  step_idx: number | null;
  actor: unknown;
  payload: Record<string, unknown>;
  created_at: Date;
}

/**
 * Inserts a queued run, its `run.created` event and its advance job in one statement: atomic without a transaction of its own, so
 * starting a run is one round trip instead of four (BEGIN, insert, enqueue, COMMIT).
 */
export async function insertQueuedRun(
  q: Queryable,
  run: { id: string; workflow: string; version: number; input: unknown; requester: unknown; origin: unknown },
  /** The run's trace context as jsonb text (src/telemetry/tracing-spans.ts `newRunTraceContext`); null without tracing. */
  traceContext: string | null,
): Promise<RunRow> {
  const { rows } = await q.query<RunRow>(
    prepared(
      'insert_queued_run_v5',
      `WITH r AS (
       INSERT INTO tollgate.runs AS runs (id, workflow, workflow_version, status, input, requester, origin, trace_context)
       VALUES ($1, $2, $3, 'queued', $4, $5, $6, $8) RETURNING ${runColumns('runs')}),
     e AS (${INSERT_EVENTS}
       SELECT id, 'run.created', NULL, requester, jsonb_build_object('workflow', workflow, 'version', workflow_version) FROM r),
     advance AS (SELECT json_build_object('runId', id) AS payload, 'advance:' || id AS job_key, 25 AS max_attempts FROM r),
     ${newKeyedJobs('j', '$7', 'advance')}
     SELECT r.* FROM r, j`,
      [
        run.id,
        run.workflow,
        run.version,
        JSON.stringify(run.input),
        JSON.stringify(run.requester ?? null),
        JSON.stringify(run.origin ?? null),
        ADVANCE_TASK,
        traceContext,
      ],
    ),
  );
  return rows[0] as RunRow;
}

export type ClaimResult =
  | { run: RunRow; previous: RunStatus; hasSteps: boolean; busy?: undefined }
  | { run: RunRow | undefined; previous?: undefined; hasSteps?: undefined; busy?: undefined }
  /** `tryLock` only: another session holds the run's lock, so nothing was read or written. */
  | { busy: true; run?: undefined; previous?: undefined; hasSteps?: undefined };

/**
 * Marks the run running under this executor, if its workflow version is one of `runnable`
 * (`name@version`). `hasSteps` false means the journal is empty (a new run), so there is nothing
 * to load.
 *
 * Recoveries are counted here, and only here. A run found `running` or `compensating` was left so
 * by an advance that did not end: its worker was killed, or lost its job (the dead-worker reaper,
 * a sweep) or its connection mid-advance. Every path that brings such a run back (a job unlocked
 * by the reaper in src/worker/worker.ts, a job enqueued by the stuck-run sweep, a job retry after a
 * journal error) goes through this claim, so counting it here counts each interruption once,
 * whoever noticed it; counting in the sweep or the reaper as well would count the same crash twice.
 * An advance that ends (finished, waiting, or a graceful shutdown, which suspends the run) leaves
 * nothing to count.
 *
 * A run already recovered `maxRecoveries` times that is found interrupted again is a poison run
 * (in the spirit of DBOS's max_recovery_attempts): resuming it has crashed a worker every time, so
 * it is dead-lettered instead of being taken over, in the same statement as its
 * `run.dead_lettered` event. The returned run then has status 'dead_letter' and the caller must
 * not execute it. The count is the run's lifetime total (as `runs show` reports it); retry resets it.
 *
 * `tryLock`: the same statement first tries the run's advisory lock on this session (the key of
 * src/db/queries/run-lock.ts), one round trip instead of two on every advance; when another
 * session holds it, the run is neither read nor changed and `busy` is returned. A session lock
 * outlives the statement even if the statement fails, so on an error the caller must let go of
 * the connection (the executor destroys it).
 */
export async function claimRun(
  q: Queryable,
  runId: string,
  executor: string,
  runnable: string[],
  maxRecoveries: number,
  tryLock = false,
): Promise<ClaimResult> {
  const { rows } = await q.query<RunRow & { previous: RunStatus; has_steps: boolean; locked?: boolean }>(
    prepared(
      tryLock ? 'lock_and_claim_run_v1' : 'claim_run_v5',
      `WITH ${tryLock ? 'lock AS MATERIALIZED (SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok),' : ''}
     prev AS (
       SELECT id, status, executor, error, recovery_attempts,
              status IN ('running', 'compensating') AS interrupted,
              status IN ('running', 'compensating') AND recovery_attempts >= $4::int AS exhausted
       FROM tollgate.runs WHERE id = $1 ${tryLock ? 'AND (SELECT ok FROM lock)' : ''} FOR UPDATE),
     poison AS (
       -- Only for a run being dead-lettered: the steps its dead executors were in, for the message.
       SELECT p.id, (SELECT string_agg(format('"%s"', s.name), ', ' ORDER BY s.idx) FROM tollgate.steps s
                     WHERE s.run_id = p.id AND s.status IN ('running', 'compensating')) AS steps
       FROM prev p WHERE p.exhausted),
     r AS (
       UPDATE tollgate.runs r SET
         status = CASE WHEN prev.exhausted THEN 'dead_letter' WHEN prev.status = 'compensating' THEN 'compensating' ELSE 'running' END,
         -- A dead-lettered run keeps the executor that last had it: the one whose logs tell why.
         executor = CASE WHEN prev.exhausted THEN r.executor ELSE $2 END,
         updated_at = now(), started_at = coalesce(r.started_at, now()),
         recovery_attempts = r.recovery_attempts + (CASE WHEN prev.interrupted AND NOT prev.exhausted THEN 1 ELSE 0 END),
         error = CASE WHEN prev.exhausted THEN jsonb_strip_nulls(jsonb_build_object(
             'name', 'TollgateError', 'code', 'TG_RUN_DEAD_LETTER',
             'message', format(
               'Run %s was dead-lettered after %s recoveries: its advance was interrupted again%s (the worker died, or lost the run, each time it resumed it). '
               'It is not advanced or swept again until a person acts: find the cause, then resume it with \`tollgate runs retry %s\`, or give up with \`tollgate runs cancel %s\`.',
               r.id, r.recovery_attempts, coalesce(' in step ' || (SELECT steps FROM poison), ''), r.id, r.id),
             'details', jsonb_strip_nulls(jsonb_build_object('runId', r.id, 'recoveries', r.recovery_attempts, 'limit', $4::int,
               'interruptedStatus', prev.status, 'lastExecutor', prev.executor, 'steps', (SELECT steps FROM poison))),
             'cause', prev.error))
           ELSE r.error END,
         wait_reason = NULL, wake_at = NULL
       FROM prev WHERE r.id = prev.id AND prev.status IN ('queued', 'waiting', 'running', 'compensating')
         AND r.workflow || '@' || r.workflow_version = ANY($3::text[])
       RETURNING ${runColumns('r')}, prev.status AS previous, prev.exhausted, prev.executor AS last_executor,
         EXISTS (SELECT 1 FROM tollgate.steps s WHERE s.run_id = r.id) AS has_steps),
     e AS (${INSERT_EVENTS}
       SELECT id,
              CASE WHEN exhausted THEN 'run.dead_lettered' WHEN previous = 'queued' THEN 'run.started' WHEN previous = 'waiting' THEN 'run.resumed' ELSE 'run.recovered' END,
              NULL, NULL,
              CASE WHEN exhausted
                THEN jsonb_strip_nulls(jsonb_build_object('recoveries', recovery_attempts, 'limit', $4::int, 'interruptedStatus', previous,
                       'lastExecutor', last_executor, 'foundBy', $2::text, 'steps', (SELECT steps FROM poison)))
                ELSE jsonb_build_object('executor', $2::text) END
       FROM r)
     ${tryLock ? 'SELECT l.ok AS locked, r.* FROM lock l LEFT JOIN r ON true' : 'SELECT * FROM r'}`,
      [runId, executor, runnable, maxRecoveries],
    ),
  );
  const row = rows[0];
  if (row?.locked === false) return { busy: true };
  if (row?.id) {
    const {
      previous,
      has_steps: hasSteps,
      exhausted: _exhausted,
      last_executor: _lastExecutor,
      locked: _locked,
      ...run
    } = row as typeof row & { exhausted: boolean; last_executor: string | null };
    return { run: run, previous, hasSteps };
  }
  return { run: await readRun(q, runId) };
}

export async function loadSteps(q: Queryable, runId: string): Promise<StepRow[]> {
  const { rows } = await q.query<StepRow>('SELECT * FROM tollgate.steps WHERE run_id = $1 ORDER BY idx', [runId]);
  return rows;
}

/** A step whose body succeeded but whose success is not written yet (see `startStepAttempt`). */
export interface StepSuccess {
  idx: number;
  name: string;
  output: unknown;
}

/**
 * Records an attempt's start, unless cancellation was requested meanwhile: then nothing is
 * written (the journal never shows a step started whose body will not run) and the caller stops.
 *
 * `previous`, when given, is the preceding step's success, written by the same statement before
 * this start (one round trip instead of two on the hot path; its event comes first).
 */
export async function startStepAttempt(
  q: Queryable,
  s: { runId: string; idx: number; name: string; kind: string; attempt: number; input?: unknown; started?: Record<string, unknown> },
  previous?: StepSuccess,
): Promise<{ cancelRequested: boolean }> {
  // `started`: more for the chained step.started event (a tool call's tool and version).
  const started = s.started === undefined ? null : JSON.stringify(s.started);
  const values = [s.runId, s.idx, s.name, s.kind, s.attempt, s.input === undefined ? null : JSON.stringify(s.input)];
  const { rows } = await q.query<{ cancel_requested: boolean }>(
    previous
      ? prepared(
          'succeed_and_start_step_v3',
          `WITH c AS (SELECT cancel_requested_at IS NOT NULL AS cancel FROM tollgate.runs WHERE id = $1),
     done AS (
       UPDATE tollgate.steps SET status = 'succeeded', output = $8, error = NULL, finished_at = now(), updated_at = now()
       WHERE run_id = $1 AND idx = $7 RETURNING run_id, idx, attempts),
     s AS (
       INSERT INTO tollgate.steps (run_id, idx, name, kind, status, attempts, input)
       SELECT $1, $2::int, $3, $4, 'running', $5::int, $6::jsonb WHERE NOT coalesce((SELECT cancel FROM c), false)
       ON CONFLICT (run_id, idx) DO UPDATE SET status = 'running', attempts = EXCLUDED.attempts,
         next_attempt_at = NULL, updated_at = now()
       RETURNING run_id, idx),
     e AS (${INSERT_EVENTS}
       SELECT run_id, type, idx, NULL, payload FROM (
         SELECT 1 AS ord, run_id, 'step.succeeded' AS type, idx, jsonb_build_object('step', $9::text, 'attempts', attempts) AS payload FROM done
         UNION ALL
         SELECT 2, run_id, 'step.started', idx, jsonb_build_object('step', $3::text, 'attempt', $5::int) || coalesce($10::jsonb, '{}') FROM s) ordered
       ORDER BY ord)
     SELECT coalesce((SELECT cancel FROM c), false) AS cancel_requested`,
          [...values, previous.idx, previous.output === undefined ? null : JSON.stringify(previous.output), previous.name, started],
        )
      : prepared(
          'start_step_v3',
          `WITH c AS (SELECT cancel_requested_at IS NOT NULL AS cancel FROM tollgate.runs WHERE id = $1),
     s AS (
       INSERT INTO tollgate.steps (run_id, idx, name, kind, status, attempts, input)
       SELECT $1, $2::int, $3, $4, 'running', $5::int, $6::jsonb WHERE NOT coalesce((SELECT cancel FROM c), false)
       ON CONFLICT (run_id, idx) DO UPDATE SET status = 'running', attempts = EXCLUDED.attempts,
         next_attempt_at = NULL, updated_at = now()
       RETURNING run_id, idx),
     e AS (${INSERT_EVENTS}
       SELECT run_id, 'step.started', idx, NULL, jsonb_build_object('step', $3::text, 'attempt', $5::int) || coalesce($7::jsonb, '{}') FROM s)
     SELECT coalesce((SELECT cancel FROM c), false) AS cancel_requested`,
          [...values, started],
        ),
  );
  return { cancelRequested: rows[0]?.cancel_requested === true };
}

export async function succeedStep(q: Queryable, runId: string, idx: number, name: string, output: unknown): Promise<void> {
  await q.query(
    prepared(
      'succeed_step_v3',
      `WITH s AS (
       UPDATE tollgate.steps SET status = 'succeeded', output = $3, error = NULL, finished_at = now(), updated_at = now()
       WHERE run_id = $1 AND idx = $2 RETURNING run_id, idx, attempts)
     ${INSERT_EVENTS}
       SELECT run_id, 'step.succeeded', idx, NULL, jsonb_build_object('step', $4::text, 'attempts', attempts) FROM s`,
      [runId, idx, output === undefined ? null : JSON.stringify(output), name],
    ),
  );
}

/** Records a failed attempt: for good (`nextAttemptAt` null) or to be retried at `nextAttemptAt`. */
export async function failStepAttempt(q: Queryable, runId: string, idx: number, name: string, error: unknown, nextAttemptAt: Date | null): Promise<void> {
  await q.query(
    prepared(
      'fail_step_v3',
      `WITH s AS (
       UPDATE tollgate.steps SET status = CASE WHEN $4::timestamptz IS NULL THEN 'failed' ELSE 'retrying' END,
         error = $3, next_attempt_at = $4, updated_at = now(),
         finished_at = CASE WHEN $4::timestamptz IS NULL THEN now() ELSE NULL END
       WHERE run_id = $1 AND idx = $2 RETURNING run_id, idx, attempts)
     ${INSERT_EVENTS}
       SELECT run_id, CASE WHEN $4::timestamptz IS NULL THEN 'step.failed' ELSE 'step.retrying' END, idx, NULL,
              jsonb_build_object('step', $5::text, 'attempt', attempts, 'error', $3::jsonb, 'nextAttemptAt', $4::timestamptz) FROM s`,
      [runId, idx, JSON.stringify(error), nextAttemptAt, name],
    ),
  );
}

/** Steps that complete as they are recorded (`now`, `uuid` values): one statement for a batch. */
export async function recordValues(q: Queryable, runId: string, values: { idx: number; name: string; kind: string; output: unknown }[]): Promise<void> {
  if (values.length === 0) return;
  await q.query(
    `WITH v AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(idx int, name text, kind text, output jsonb)),
     s AS (INSERT INTO tollgate.steps (run_id, idx, name, kind, status, output, attempts, finished_at)
       SELECT $1, idx, name, kind, 'succeeded', output, 1, now() FROM v RETURNING run_id, idx, name, kind)
     ${INSERT_EVENTS}
       SELECT run_id, 'step.recorded', idx, NULL, jsonb_build_object('step', name, 'kind', kind) FROM s`,
    [runId, JSON.stringify(values)],
  );
}

export async function startSleep(q: Queryable, runId: string, idx: number, name: string, wakeAt: Date): Promise<void> {
  await q.query(
    `WITH s AS (INSERT INTO tollgate.steps (run_id, idx, name, kind, status, wake_at, attempts)
       VALUES ($1, $2, $3, 'sleep', 'sleeping', $4, 1) RETURNING run_id, idx)
     ${INSERT_EVENTS}
       SELECT run_id, 'step.sleeping', idx, NULL, jsonb_build_object('step', $3::text, 'wakeAt', $4::timestamptz) FROM s`,
    [runId, idx, name, wakeAt],
  );
}

/**
 * The preceding step's success, written first by the same statement (see `startStepAttempt`): a
 * data-modifying CTE and the event it adds, ordered before the run's own event. `$P`, `$P+1` and
 * `$P+2` are the step's index, output and name; with no step, `$P` is NULL and the CTE writes nothing.
 */
function stepDoneCte(p: number): string {
  return `done AS (
       UPDATE tollgate.steps SET status = 'succeeded', output = $${p + 1}, error = NULL, finished_at = now(), updated_at = now()
       WHERE run_id = $1 AND idx = $${p}::int RETURNING run_id, idx, attempts)`;
}
function stepDoneValues(previous: StepSuccess | undefined): unknown[] {
  if (!previous) return [null, null, null];
  return [previous.idx, previous.output === undefined ? null : JSON.stringify(previous.output), previous.name];
}

/**
 * Ends a run: succeeded, failed or cancelled. `previous`, when given, is the last step's success,
 * written by the same statement before the run's end (one commit instead of two; its event first).
 */
export async function finishRun(
  q: Queryable,
  runId: string,
  status: 'succeeded' | 'failed' | 'cancelled' | 'compensated' | 'compensation_failed',
  result: { output?: unknown; error?: unknown },
  previous?: StepSuccess,
): Promise<void> {
  await q.query(
    prepared(
      'finish_run_v3',
      `WITH ${stepDoneCte(5)},
     r AS (
       UPDATE tollgate.runs SET status = $2, output = $3, error = $4, finished_at = now(), updated_at = now(),
         wait_reason = NULL, wake_at = NULL
       WHERE id = $1 RETURNING id)
     ${INSERT_EVENTS}
       SELECT run_id, type, idx, NULL, payload FROM (
         SELECT 1 AS ord, run_id, 'step.succeeded' AS type, idx, jsonb_build_object('step', $7::text, 'attempts', attempts) AS payload FROM done
         UNION ALL
         SELECT 2, id, 'run.' || $2, NULL, jsonb_strip_nulls(jsonb_build_object('error', $4::jsonb)) FROM r) ordered
       ORDER BY ord`,
      [
        runId,
        status,
        result.output === undefined ? null : JSON.stringify(result.output),
        result.error === undefined ? null : JSON.stringify(result.error),
        ...stepDoneValues(previous),
      ],
    ),
  );
}

/**
 * The run waits (no worker held) for `reason`; a timer job wakes it at `wakeAt` when given.
 * `previous`, when given, is the last step's success, written first by the same statement.
 */
export async function suspendRun(q: Queryable, runId: string, reason: string, wakeAt: Date | null, previous?: StepSuccess): Promise<void> {
  await q.query(
    prepared(
      'suspend_run_v3',
      `WITH ${stepDoneCte(5)},
     r AS (
       UPDATE tollgate.runs SET status = 'waiting', wait_reason = $2, wake_at = $3, updated_at = now()
       WHERE id = $1 RETURNING id),
     e AS (${INSERT_EVENTS}
       SELECT run_id, type, idx, NULL, payload FROM (
         SELECT 1 AS ord, run_id, 'step.succeeded' AS type, idx, jsonb_build_object('step', $7::text, 'attempts', attempts) AS payload FROM done
         UNION ALL
         SELECT 2, id, 'run.waiting', NULL, jsonb_strip_nulls(jsonb_build_object('reason', $2::text, 'wakeAt', $3::timestamptz)) FROM r) ordered
       ORDER BY ord),
     j AS (SELECT graphile_worker.add_job($4, json_build_object('runId', $1::text), run_at => $3, job_key => 'wake:' || $1,
             job_key_mode => 'replace', max_attempts => 25) FROM r WHERE $3::timestamptz IS NOT NULL)
     SELECT count(*) FROM j`,
      [runId, reason, wakeAt, ADVANCE_TASK, ...stepDoneValues(previous)],
    ),
  );
}

/** A run's events in the order they were appended. */
export async function loadEvents(q: Queryable, runId: string): Promise<EventRow[]> {
  const { rows } = await q.query<EventRow>('SELECT * FROM tollgate.events WHERE run_id = $1 ORDER BY id', [runId]);
  return rows;
}

/** The newest runs first, optionally of one status or workflow. */
export async function listRuns(q: Queryable, opts: { limit?: number; status?: RunStatus; workflow?: string } = {}): Promise<RunRow[]> {
  const { rows } = await q.query<RunRow>(
    `SELECT * FROM tollgate.runs WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR workflow = $2)
       ORDER BY created_at DESC, id DESC LIMIT $3`,
    [opts.status ?? null, opts.workflow ?? null, opts.limit ?? 20],
  );
  return rows;
}

/**
 * Marks cancellation requested (first request and requester kept). A dead-lettered run is queued
 * again with its recoveries counted afresh and its error back to what it was before the dead
 * letter (see `Runtime.cancel`). The caller appends the event and enqueues the advance.
 */
export async function requestCancel(q: Queryable, runId: string, actor: unknown): Promise<RunRow> {
  const { rows } = await q.query<RunRow>(
    `UPDATE tollgate.runs SET cancel_requested_at = coalesce(cancel_requested_at, now()), cancel_requested_by = coalesce(cancel_requested_by, $2),
           status = CASE WHEN status = 'dead_letter' THEN 'queued' ELSE status END,
           recovery_attempts = CASE WHEN status = 'dead_letter' THEN 0 ELSE recovery_attempts END,
           error = CASE WHEN status = 'dead_letter' THEN error->'cause' ELSE error END,
           updated_at = now() WHERE id = $1 RETURNING *`,
    [runId, JSON.stringify(actor)],
  );
  return rows[0] as RunRow;
}

/** Sets a failed run's failed steps to be attempted again, from a first attempt; returns those steps. */
export async function resetFailedSteps(q: Queryable, runId: string): Promise<{ idx: number; name: string }[]> {
  const { rows } = await q.query<{ idx: number; name: string }>(
    `UPDATE tollgate.steps SET status = 'retrying', attempts = 0, next_attempt_at = NULL, finished_at = NULL, updated_at = now()
         WHERE run_id = $1 AND status = 'failed' RETURNING idx, name`,
    [runId],
  );
  return rows;
}

/** A failed run queued again (its error and end cleared), for a retry. */
export async function requeueFailedRun(q: Queryable, runId: string): Promise<RunRow> {
  const { rows } = await q.query<RunRow>(
    `UPDATE tollgate.runs SET status = 'queued', error = NULL, finished_at = NULL, updated_at = now() WHERE id = $1 RETURNING *`,
    [runId],
  );
  return rows[0] as RunRow;
}

/** A dead-lettered run queued again, its recoveries counted from 0 (its journal untouched). */
export async function requeueDeadLetter(q: Queryable, runId: string): Promise<RunRow> {
  const { rows } = await q.query<RunRow>(
    `UPDATE tollgate.runs SET status = 'queued', recovery_attempts = 0, error = NULL, updated_at = now() WHERE id = $1 RETURNING *`,
    [runId],
  );
  return rows[0] as RunRow;
}

/**
 * Locks (SKIP LOCKED, at most 500, oldest first) the live runs untouched for `stuckAfter` (an
 * interval), or waiting on a timer that far past, that have no advance job left that can still
 * run. For the stuck-run sweep (src/runtime/sweep.ts).
 */
export async function lockStuckRuns(q: Queryable, stuckAfter: string): Promise<string[]> {
  const { rows } = await q.query<{ id: string }>(
    `SELECT r.id FROM tollgate.runs r
       WHERE ((r.status IN ('queued', 'running', 'compensating') AND r.updated_at < now() - $1::interval)
           OR (r.status = 'waiting' AND r.wake_at IS NOT NULL AND r.wake_at < now() - $1::interval))
         AND NOT EXISTS (
           -- Graphile Worker 0.17's own tables: its public jobs view does not show payloads.
           SELECT 1 FROM graphile_worker._private_jobs j
           JOIN graphile_worker._private_tasks t ON t.id = j.task_id
           WHERE t.identifier = $2 AND j.payload->>'runId' = r.id AND j.attempts < j.max_attempts)
       ORDER BY r.updated_at
       LIMIT 500
       FOR UPDATE OF r SKIP LOCKED`,
    [stuckAfter, ADVANCE_TASK],
  );
  return rows.map((r) => r.id);
}

// ----- a run's trace context (src/telemetry/tracing-spans.ts) -----------------------------------

/** Stores `context` (jsonb text) as the run's trace context unless it has one; returns the one it has now. */
export async function setTraceContextIfMissing(q: Queryable, runId: string, context: string | null): Promise<unknown> {
  const { rows } = await q.query<{ trace_context: unknown }>(
    'UPDATE tollgate.runs SET trace_context = coalesce(trace_context, $2::jsonb) WHERE id = $1 RETURNING trace_context',
    [runId, context],
  );
  return rows[0]?.trace_context ?? null;
}

/** What the run's root span shows when it ends. */
export interface EndedRunTrace {
  workflow: string;
  workflow_version: number;
  status: string;
  error: { code?: string; name?: string; message?: string } | null;
  created_at: Date;
  finished_at: Date | null;
  recovery_attempts: number;
  trace_context: unknown;
}

/**
 * Marks the ended run's trace context `ended`, once: the run, if it has a trace context not marked
 * yet and a terminal status; undefined otherwise.
 */
export async function markTraceEnded(q: Queryable, runId: string): Promise<EndedRunTrace | undefined> {
  const { rows } = await q.query<EndedRunTrace>(
    `UPDATE tollgate.runs SET trace_context = trace_context || '{"ended": true}'::jsonb
       WHERE id = $1 AND trace_context IS NOT NULL AND NOT trace_context ? 'ended' AND status = ANY($2::text[])
       RETURNING workflow, workflow_version, status, error, created_at, finished_at, recovery_attempts, trace_context`,
    [runId, [...TERMINAL_STATUSES]],
  );
  return rows[0];
}

/** The run's stored trace context (undefined for no such run). */
export async function readTraceContext(q: Queryable, runId: string): Promise<unknown> {
  const { rows } = await q.query<{ trace_context: unknown }>('SELECT trace_context FROM tollgate.runs WHERE id = $1', [runId]);
  return rows[0]?.trace_context;
}

/** The payloads of a run's events of one type, in order; blanked ones (retention) left out. */
export async function selectEventPayloads<P>(q: Queryable, runId: string, type: string): Promise<P[]> {
  const { rows } = await q.query<{ payload: P }>('SELECT payload FROM tollgate.events WHERE run_id = $1 AND type = $2 AND payload IS NOT NULL ORDER BY id', [
    runId,
    type,
  ]);
  return rows.map((r) => r.payload);
}
