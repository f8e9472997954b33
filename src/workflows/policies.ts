/**
 * The built-in workflows' default approval policies, built from their own settings
 * (`workflows.purchase-order.approvalThreshold`, `approverGroup`, `quorum`, `escalateToGroup`,
 * `approvalTimeout`; `workflows.deploy.nonProductionEnvironments`, `approverGroup`, …). A
 * `policies.<workflow>` entry in the project configuration replaces the default. `tollgate policy`
 * reads this table to test and compare the policies that apply.
 */
import type { WorkflowPolicyConfig } from '../approvals/policies-schema.ts';
import type { ProjectConfig } from '../config/project-config.ts';
import { deployPolicy } from './deploy.ts';
import { purchaseOrderPolicy } from './purchase-order.ts';

export const BUILTIN_DEFAULT_POLICIES: Readonly<Record<string, (project: ProjectConfig) => WorkflowPolicyConfig>> = {
  'purchase-order': purchaseOrderPolicy,
  deploy: deployPolicy,
};
