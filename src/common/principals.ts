/**
 * A principal is who acts: platform + tenant + user. Slack: tenant is the team (or enterprise
 * for org-wide installs), user the Slack user id. Teams: tenant is the AAD tenant id, user the
 * AAD object id. The CLI acts as `cli:<host>:<os user>`. Written `platform:tenant:user`; a
 * further chat platform brings its own name (lower case), and nothing here needs to know it.
 */
import { z } from 'zod';
import { TollgateError } from './errors.ts';

/** A platform's name: `slack`, `teams`, `cli`, or any chat platform an adapter registers. */
export const PLATFORM_NAME = /^[a-z][a-z0-9-]*$/;

export const principalSchema = z.object({
  platform: z.string().regex(PLATFORM_NAME),
  tenant: z.string().min(1),
  user: z.string().min(1),
  /** A display name, for messages only; never used to authorise. */
  name: z.string().optional(),
});
export type Principal = z.infer<typeof principalSchema>;

const PRINCIPAL = /^([a-z][a-z0-9-]*):([^:\s]+):([^:\s]+)$/;

export function parsePrincipal(s: string): Principal {
  const m = PRINCIPAL.exec(s.trim());
  if (!m) {
    throw new TollgateError(
      'TG_PRINCIPAL_INVALID',
      `"${s}" is not a principal. Write slack:<team-or-enterprise-id>:<user-id>, teams:<tenant-id>:<aad-object-id> or cli:<host>:<user>.`,
    );
  }
  return { platform: m[1] as string, tenant: m[2] as string, user: m[3] as string };
}

export function formatPrincipal(p: Pick<Principal, 'platform' | 'tenant' | 'user'>): string {
  return `${p.platform}:${p.tenant}:${p.user}`;
}

export function samePrincipal(a: Pick<Principal, 'platform' | 'tenant' | 'user'>, b: Pick<Principal, 'platform' | 'tenant' | 'user'>): boolean {
  return a.platform === b.platform && a.tenant === b.tenant && a.user === b.user;
}
