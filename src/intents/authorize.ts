/**
 * The rules of who may do what to a run, as pure functions of verified principals and the project
 * configuration. The runtime (src/runtime/runtime.ts) is the one place that applies them, for every
 * caller: chat adapters, the CLI and tests all go through `Runtime`, so no caller can skip a check
 * by being a different kind of caller. Deciding an approval follows its own policy
 * (src/approvals/policy.ts), also applied inside the runtime.
 *
 * Never decided from anything a button carries: the principal comes from the platform's verified
 * identity (Slack's signature, Teams' token) or, at the shell, from the operating system.
 */
import { TollgateError } from '../common/errors.ts';
import type { ProjectConfig } from '../config/project-config.ts';
import { formatPrincipal, parsePrincipal, principalSchema, samePrincipal, type Principal } from '../common/principals.ts';

/** Retry and cancel: the person who asked for the run, or an operator. */
export function mayOperateRun(actor: Principal, run: { requester: unknown }, project: Pick<ProjectConfig, 'operators'>): boolean {
  const requester = principalSchema.safeParse(run.requester);
  if (requester.success && samePrincipal(requester.data, actor)) return true;
  return isOperator(actor, project);
}

export function isOperator(actor: Principal, project: Pick<ProjectConfig, 'operators'>): boolean {
  return project.operators.includes(formatPrincipal(actor));
}

/**
 * Reading a run (its status and steps), scoped like approvals: by exact principal and tenant. The
 * requester, anyone of the requester's tenant (or of the tenant the run was asked for in), the
 * approvers its gates name, and operators. A principal of another workspace or tenant is not
 * told the run exists.
 */
export function mayReadRun(
  viewer: Principal,
  run: { requester: unknown; origin: unknown },
  approvers: readonly string[],
  project: Pick<ProjectConfig, 'operators'>,
): boolean {
  if (isOperator(viewer, project)) return true;
  if (approvers.includes(formatPrincipal(viewer))) return true;
  const requester = principalSchema.safeParse(run.requester);
  if (requester.success && sameTenant(requester.data, viewer)) return true;
  const origin = run.origin as { platform?: unknown; tenant?: unknown } | null;
  return !!origin && origin.platform === viewer.platform && origin.tenant === viewer.tenant;
}

function sameTenant(a: Pick<Principal, 'platform' | 'tenant'>, b: Pick<Principal, 'platform' | 'tenant'>): boolean {
  return a.platform === b.platform && a.tenant === b.tenant;
}

/**
 * Who a CLI command acts as. The shell's identity is the operating system's user,
 * `cli:<host>:<user>`, and nothing typed can change who that is. `--as <principal>` is allowed
 * only when the project configuration lists that principal for this OS user under
 * `cliDelegates`: the OS user who ran the command is still recorded with everything it does
 * (`osUser`), so a decision made "as" a Slack user is never mistaken for one made in Slack.
 */
export function resolveCliActor(
  osUser: Principal,
  as: string | undefined,
  project: Pick<ProjectConfig, 'cliDelegates'>,
): { principal: Principal; osUser: string } {
  const me = formatPrincipal(osUser);
  if (as === undefined) return { principal: osUser, osUser: me };
  const claimed = parsePrincipal(as);
  const wanted = formatPrincipal(claimed);
  if (wanted === me) return { principal: osUser, osUser: me };
  const allowed = project.cliDelegates[me] ?? [];
  if (!allowed.some((p) => formatPrincipal(parsePrincipal(p)) === wanted)) {
    throw new TollgateError(
      'TG_NOT_ALLOWED',
      `You are ${me} at this shell and may not act as ${wanted}: add "${wanted}" to cliDelegates["${me}"] in the TOLLGATE_CONFIG file, or leave out --as to act as yourself.`,
      { osUser: me, as: wanted },
    );
  }
  return { principal: claimed, osUser: me };
}
