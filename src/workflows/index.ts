/** The built-in workflows, registered by every Tollgate process. */
import type { WorkflowDefinition } from '../runtime/workflow.ts';
import { demo } from './demo.ts';

export function builtinWorkflows(): WorkflowDefinition[] {
  return [demo as unknown as WorkflowDefinition];
}
