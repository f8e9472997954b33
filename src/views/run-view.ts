/**
 * The platform-neutral view of a run: what every chat adapter shows about it (workflow and
 * version, requester, each step with status and duration, why it waits, the error of a failed
 * step, the actions offered, and its approvals). Every chat platform renders this same view (Slack
 * as Block Kit), so every platform shows the same facts.
 *
 * General notes
 * - Built from journal rows only (`runs`, `steps`, and the approval tables through `approvals`); it never reads
 *   the clock, so the same state always renders the same view (the chat outbox compares hashes
 *   of renderings to skip no-op updates).
 * - It says which actions are *offered* in this state; who may use them is decided when a click
 *   arrives (`src/intents/authorize.ts`), from the verified identity.
 * - `approvals` comes from the approvals engine (`buildRunView`'s `approvals` argument, built by
 *   src/views/approval-view.ts); callers that show no approvals pass none. Reading a run's view
 *   from the database is src/views/load-run-view.ts.
 */
import type { Principal } from '../common/principals.ts';
import { principalSchema } from '../common/principals.ts';
import type { ApprovalView } from './approval-view.ts';
import { whyNotRetryable } from '../runtime/retryable.ts';
import type { RunRow, RunStatus, StepRow, StepStatus } from '../db/queries/runs.ts';
import { isTerminalStatus } from '../db/queries/runs.ts';

/** Interactive ids (part of the external contract, see docs/slack.md and docs/teams.md): Slack action_id, Teams verb. */
export const ACTION_IDS = {
  approve: 'approval.approve',
  reject: 'approval.reject',
  retry: 'run.retry',
  cancel: 'run.cancel',
  /** Edit and retry: opens the workflow's form prefilled with the run's input (docs/operator-control.md). */
  edit: 'run.edit',
  /** Resolve by hand (or skip, or give up) a failed step that allows it; operators. */
  resolve: 'run.resolve',
} as const;

export type RunAction = typeof ACTION_IDS.retry | typeof ACTION_IDS.cancel | typeof ACTION_IDS.edit | typeof ACTION_IDS.resolve;

export interface StepView {
  idx: number;
  name: string;
  kind: string;
  status: StepStatus;
  attempts: number;
  /** From the first start to the end; null while the step is unfinished. */
  durationMs: number | null;
  /** The last error's message (a failed or retrying step). */
  error: string | null;
  // Optional only so views written by hand (tests, previews) need not spell them; buildRunView always sets them.
  /** The recorded input and output (a tool call's, a step's result); null when none or purged by retention. */
  input?: unknown;
  output?: unknown;
  /** The first attempt's start, and the end (null while unfinished). */
  startedAt?: Date;
  finishedAt?: Date | null;
}

export interface RunView {
  runId: string;
  workflow: string;
  version: number;
  status: RunStatus;
  requester: Principal | null;
  input: unknown;
  output: unknown;
  createdAt: Date;
  finishedAt: Date | null;
  /** Durable steps in order; recorded values (`now`, `uuid`) are left out. */
  steps: StepView[];
  /** Why a waiting run waits ('sleep', 'retry', 'approval' …) and until when, if a timer wakes it. */
  waiting: { reason: string; until: Date | null } | null;
  /** The error that ended (or is ending) the run, with the step it came from when known. */
  error: { step: string | null; message: string } | null;
  cancelRequested: boolean;
  /** The actions offered in this state, in display order. */
  actions: RunAction[];
  approvals: ApprovalView[];
  /**
   * The run's revision when the view was read (its newest event's place in the run's chain,
   * src/db/queries/run-views.ts `readRunRevision`): every button of a copy carries it, so a click
   * on an outdated copy is recognised (src/chat/intake/stale.ts). Unset in views built by hand
   * (their buttons carry no version and are handled as before versions existed).
   */
  revision?: number;
}

// Recorded values, not work: `now`, `uuid`, and a model step's budget decision (its approval, when
// it asks for one, is shown as an approval).
const HIDDEN_KINDS = new Set(['now', 'uuid', 'budget']);

function messageOf(error: unknown): string | null {
  if (error === null || error === undefined) return null;
  if (typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string') {
    return (error as { message: string }).message;
  }
  return typeof error === 'string' ? error : JSON.stringify(error);
}

function asPrincipal(value: unknown): Principal | null {
  const parsed = principalSchema.safeParse(value);
  return parsed.success ? parsed.data : null;
}

export function buildRunView(run: RunRow, steps: StepRow[], approvals: ApprovalView[] = []): RunView {
  const stepViews: StepView[] = steps
    .filter((s) => !HIDDEN_KINDS.has(s.kind))
    .map((s) => ({
      idx: s.idx,
      name: s.name,
      kind: s.kind,
      status: s.status,
      attempts: s.attempts,
      durationMs: s.finished_at ? Math.max(0, s.finished_at.getTime() - s.started_at.getTime()) : null,
      error: s.status === 'failed' || s.status === 'retrying' || s.status === 'compensation_failed' ? messageOf(s.error) : null,
      input: s.input ?? null,
      output: s.output ?? null,
      startedAt: s.started_at,
      finishedAt: s.finished_at,
    }));
  const failedStep = stepViews.find((s) => s.status === 'failed' || s.status === 'compensation_failed');
  const runError = messageOf(run.error);
  const error = failedStep?.error ? { step: failedStep.name, message: failedStep.error } : runError ? { step: null, message: runError } : null;
  const actions: RunAction[] = [];
  // Retry only where a retry can succeed: not after a rejected or expired approval, which a replay
  // would meet again (runtime.retry refuses those with the reason).
  if (run.status === 'failed' && whyNotRetryable(run) === undefined) actions.push(ACTION_IDS.retry, ACTION_IDS.edit);
  // Resolve by hand where the failed step allows a person's resolution (its failure held the undo).
  if (run.status === 'failed' && run.held) actions.push(ACTION_IDS.resolve);
  // Dead letter is stuck, not ended: Retry takes it out (Cancel, below, is the other way out).
  if (run.status === 'dead_letter') actions.push(ACTION_IDS.retry);
  if (!isTerminalStatus(run.status) && run.status !== 'compensating' && !run.cancel_requested_at) actions.push(ACTION_IDS.cancel);
  return {
    runId: run.id,
    workflow: run.workflow,
    version: run.workflow_version,
    status: run.status,
    requester: asPrincipal(run.requester),
    input: run.input,
    output: run.output,
    createdAt: run.created_at,
    finishedAt: run.finished_at,
    steps: stepViews,
    waiting: run.status === 'waiting' ? { reason: run.wait_reason ?? 'unknown', until: run.wake_at } : null,
    error: run.status === 'succeeded' ? null : error,
    cancelRequested: run.cancel_requested_at !== null,
    actions,
    approvals,
  };
}

export const STATUS_LABELS: Record<RunStatus, string> = {
  queued: 'Queued',
  running: 'Running',
  waiting: 'Waiting',
  succeeded: 'Succeeded',
  failed: 'Failed',
  cancelled: 'Cancelled',
  compensating: 'Undoing completed steps',
  compensated: 'Failed; completed steps undone',
  compensation_failed: 'Undo failed; needs a person',
  dead_letter: 'Stopped after repeated crashes; retry or cancel it',
};
