/**
 * A run's view read from the database: the run, its steps and (for its chat message) its
 * approvals, built into the pure `RunView` (run-view.ts) with the approval views of
 * approval-view.ts. Kept apart from both so that run-view.ts and approval-view.ts stay pure and
 * neither imports the other's loader (run-view only takes the `ApprovalView` type).
 */
import { listRunApprovals } from '../approvals/store.ts';
import type { Queryable } from '../db/queryable.ts';
import { loadSteps, readRun } from '../db/queries/runs.ts';
import { runMessageApprovals, type ApprovalView } from './approval-view.ts';
import { buildRunView, type RunView } from './run-view.ts';

/** Reads a run and its steps and builds its view; undefined when there is no such run. */
export async function loadRunView(q: Queryable, runId: string, approvals: ApprovalView[] = []): Promise<RunView | undefined> {
  const row = await readRun(q, runId);
  if (!row) return undefined;
  return buildRunView(row, await loadSteps(q, runId), approvals);
}

/** A run's view as its chat message shows it, with its approvals; undefined when there is no such run. */
export async function loadRunMessageView(q: Queryable, runId: string): Promise<RunView | undefined> {
  return loadRunView(q, runId, runMessageApprovals(await listRunApprovals(q, runId)));
}
