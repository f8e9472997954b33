/** The built-in workflows, registered by every Tollgate process. */
import { EMPTY_PROJECT_CONFIG, type ProjectConfig } from '../config/project-config.ts';
import type { WorkflowDefinition } from '../runtime/workflow.ts';
import { demo } from './demo.ts';
import { deployWorkflow } from './deploy.ts';
import { purchaseOrderWorkflow } from './purchase-order.ts';
import { crmFromEmailWorkflow } from './crm-from-email.ts';

export function builtinWorkflows(project: ProjectConfig = EMPTY_PROJECT_CONFIG): WorkflowDefinition[] {
  return [demo, purchaseOrderWorkflow(project), deployWorkflow(project), crmFromEmailWorkflow(project)];
}
