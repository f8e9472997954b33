/**
 * Who may retry or cancel a run: the person who asked for it, and the operators named in the
 * project configuration. Decided from a verified principal, never from anything a button carries.
 */
import type { ProjectConfig } from '../project-config.ts';
import { formatPrincipal, principalSchema, samePrincipal, type Principal } from '../principals.ts';

export function mayOperateRun(actor: Principal, run: { requester: unknown }, project: Pick<ProjectConfig, 'operators'>): boolean {
  const requester = principalSchema.safeParse(run.requester);
  if (requester.success && samePrincipal(requester.data, actor)) return true;
  return project.operators.includes(formatPrincipal(actor));
}
