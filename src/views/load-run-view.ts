/**
 * A run's view read from the database: the run, its steps and (for its chat message) its
 * approvals, built into the pure `RunView` (run-view.ts) with the approval views of
 * approval-view.ts. Kept apart from both so that run-view.ts and approval-view.ts stay pure and
 * neither imports the other's loader (run-view only takes the `ApprovalView` type).
 */
import { listRunApprovals } from '../approvals/store.ts';
import type { Queryable } from '../db/queryable.ts';
import { readApprovalRunRevision, readRunRevision } from '../db/queries/run-views.ts';
import { loadSteps, readRun } from '../db/queries/runs.ts';
import { getApproval } from '../approvals/store.ts';
import { runMessageApprovals, toApprovalView, type ApprovalView } from './approval-view.ts';
import { buildRunView, type RunView } from './run-view.ts';

/** Reads a run and its steps and builds its view; undefined when there is no such run. */
export async function loadRunView(q: Queryable, runId: string, approvals: ApprovalView[] = []): Promise<RunView | undefined> {
  const row = await readRun(q, runId);
  if (!row) return undefined;
  return buildRunView(row, await loadSteps(q, runId), approvals);
}

/**
 * Reads a state together with the revision it is at. Each statement of a transaction sees what
 * was committed when it began, so the revision is read before and after the state, and the read
 * is repeated while an event committed in between; after three tries the revision read first is
 * kept: older than the state, never newer, so a copy never carries a revision newer than what it
 * shows (a click on it may then be judged outdated once more than needed, never less).
 */
export async function atRevision<T>(readRevision: () => Promise<number>, readState: () => Promise<T>): Promise<{ state: T; revision: number }> {
  let before = await readRevision();
  for (let tries = 1; ; tries++) {
    const state = await readState();
    const after = await readRevision();
    if (after === before || tries === 3) return { state, revision: before };
    before = after;
  }
}

/** A run's view as its chat message shows it, with its approvals and the run's revision (its buttons carry it); undefined when there is no such run. */
export async function loadRunMessageView(q: Queryable, runId: string): Promise<RunView | undefined> {
  const { state: view, revision } = await atRevision(
    () => readRunRevision(q, runId),
    async () => loadRunView(q, runId, runMessageApprovals(await listRunApprovals(q, runId))),
  );
  return view ? { ...view, approvals: view.approvals.map((a) => ({ ...a, revision })), revision } : undefined;
}

/** An approval's view as its copies show it, with its run's revision (see `atRevision`); undefined when unknown. */
export async function loadApprovalCopyView(q: Queryable, approvalId: string): Promise<ApprovalView | undefined> {
  const { state: a, revision } = await atRevision(
    () => readApprovalRunRevision(q, approvalId),
    () => getApproval(q, approvalId),
  );
  return a ? { ...toApprovalView(a), revision } : undefined;
}
