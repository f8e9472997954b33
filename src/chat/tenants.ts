/**
 * The one list of Slack workspaces and Microsoft tenants served (`tenants` in the project
 * configuration), for chat and for the console's sign-in alike. Empty: every workspace and tenant,
 * as before the list existed.
 *
 * The tenant asked about is the one a principal names (`slack:<tenant>:…`, `teams:<tenant>:…`):
 * for Slack the acting person's own workspace (or the enterprise, for org-wide installs), for Teams
 * the activity's tenant. A request naming no tenant is refused when the list is not empty.
 */
import type { Logger } from '../common/log.ts';

/** Whether `tenant` is served under `tenants` (pure: the console's sign-in asks it too). */
export function tenantOnList(tenants: readonly string[], tenant: string | null | undefined): boolean {
  if (tenants.length === 0) return true;
  return typeof tenant === 'string' && tenants.includes(tenant);
}

/**
 * The chat layer's door check (`ChatCore.tenantAllowed`): the same answer, and a log line naming
 * the platform and tenant of what is refused, so an operator sees who knocked.
 */
export function tenantGate(tenants: readonly string[], log: Logger): (platform: string, tenant: string | null | undefined) => boolean {
  const list = Object.freeze([...tenants]);
  return (platform, tenant) => {
    if (tenantOnList(list, tenant)) return true;
    log.warn(
      { platform, tenant: tenant ?? null },
      `refused a ${platform} request from ${tenant ? `tenant ${tenant}` : 'a request naming no tenant'}: it is not on the project configuration's tenants list; nothing was recorded`,
    );
    return false;
  };
}
