/**
 * The answer to a click on an outdated copy (a stale button, src/chat/intake/stale.ts): what
 * happened since the copy was drawn, read from the journal (the run's events after the revision
 * its buttons carried), and the state now. Every platform renders it with the shared sentences
 * (src/views/text.ts `outdatedLines`), so Slack and Teams say the same thing.
 *
 * Pure: built from stored rows (the events, the run's and the approval's views), never the clock.
 */
import { principalSchema, type Principal } from '../common/principals.ts';
import type { RevisionEventRow } from '../db/queries/run-views.ts';
import type { ApprovalView } from './approval-view.ts';
import { STATUS_LABELS, type RunView } from './run-view.ts';

/** One change since the copy was drawn: what, by whom (when a person did it) and when. */
export interface ChangeView {
  what: string;
  by: Principal | null;
  at: Date;
}

export interface OutdatedView {
  runId: string;
  /** The approval the clicked button named, for Approve and Reject. */
  approvalId?: string;
  /** The changes that matter, oldest first (at most `MAX_CHANGES`, the newest). */
  changes: ChangeView[];
  /** Changes that matter left out (older than those shown). */
  earlier: number;
  /** The state now, in one sentence without marks (each platform escapes it). */
  now: string;
}

export const MAX_CHANGES = 5;

function principalOrNull(v: unknown): Principal | null {
  const p = principalSchema.safeParse(v);
  return p.success ? p.data : null;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

/** What one event means to someone who clicked an older copy; null for the journal's bookkeeping (a step starting, a value recorded). */
export function describeChange(e: Pick<RevisionEventRow, 'type' | 'actor' | 'payload' | 'created_at'>): ChangeView | null {
  const by = principalOrNull(e.actor);
  const at = e.created_at;
  const p = e.payload ?? {};
  const change = (what: string, who: Principal | null = by): ChangeView => ({ what, by: who, at });
  switch (e.type) {
    case 'run.retried':
      return change(p.fromDeadLetter ? 'Taken out of dead letter and retried' : 'Retried');
    case 'run.cancel_requested':
      return change('Cancel requested');
    case 'approval.decided':
      return change(p.decision === 'reject' ? 'Rejected' : 'Approved');
    case 'approval.escalated':
      return change(`Its deadline passed and it was escalated${str(p.to) ? ` to ${str(p.to)}` : ''}`, null);
    case 'approval.expired':
      return change('Its deadline passed and the approval expired', null);
    case 'approval.voided':
      return change('The approval was voided: its parameters changed', null);
    case 'step.failed':
      return change(`Step ${str(p.step) ?? '?'} failed`, null);
    case 'run.dead_lettered':
      return change('Stopped after repeated crashes', null);
    case 'run.succeeded':
    case 'run.cancelled':
    case 'run.compensated':
    case 'run.compensation_failed':
      return change(`The run ended: ${STATUS_LABELS[e.type.slice(4) as RunView['status']]}`, null);
    default:
      return null;
  }
}

/** The run now: its status and, while it runs or after it failed, the step. */
export function runNow(run: Pick<RunView, 'status' | 'steps' | 'waiting' | 'error' | 'cancelRequested'>): string {
  const label = STATUS_LABELS[run.status];
  const current = run.steps.at(-1);
  const number = run.steps.length;
  switch (run.status) {
    case 'running':
    case 'queued':
      return current && current.status !== 'succeeded' ? `running step ${number} (${current.name})` : `${label.toLowerCase()}`;
    case 'waiting':
      return `waiting (${run.waiting?.reason ?? 'unknown'})${current ? ` at step ${number} (${current.name})` : ''}`;
    case 'failed':
      return run.error?.step ? `failed at step ${run.error.step}` : 'failed';
    default:
      return `${label}${run.cancelRequested && run.status !== 'cancelled' ? ' (cancel requested)' : ''}`;
  }
}

/** The approval now: still waiting (for whom, the tally) or how it ended (who decided is in the changes). */
export function approvalNow(a: ApprovalView): string {
  if (a.status === 'pending') return `the approval waits for ${a.approvers} (${a.approvals} of ${a.required} so far)`;
  return `the approval is ${a.status}${a.endReason ? `: ${a.endReason}` : ''}`;
}

/** The answer to a click on an outdated copy, from the events since its revision and the state now. */
export function buildOutdatedView(o: { runId: string; approvalId?: string; since: RevisionEventRow[]; now: string }): OutdatedView {
  const all = o.since.map(describeChange).filter((c): c is ChangeView => c !== null);
  const changes = all.slice(-MAX_CHANGES);
  return { runId: o.runId, ...(o.approvalId ? { approvalId: o.approvalId } : {}), changes, earlier: all.length - changes.length, now: o.now };
}
