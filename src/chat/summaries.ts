/** Small conversions from stored rows to the reply views of src/chat/replies.ts. */
import type { RunRow } from '../db/queries/runs.ts';
import type { WorkflowDefinition } from '../runtime/workflow.ts';
import { describeInputs } from '../views/form.ts';
import type { RunSummary, WorkflowSummary } from './replies.ts';

export function toRunSummary(r: RunRow): RunSummary {
  return { id: r.id, workflow: r.workflow, version: r.workflow_version, status: r.status, createdAt: r.created_at };
}

export function toWorkflowSummary(d: WorkflowDefinition): WorkflowSummary {
  return { name: d.name, version: d.version, description: d.description, inputs: describeInputs(d.input) };
}
