/**
 * The console's OpenID Connect settings: `console.oidc` in the project configuration
 * (`{issuer, clientId, principal}`), TOLLGATE_OIDC_ISSUER / TOLLGATE_OIDC_CLIENT_ID /
 * TOLLGATE_OIDC_CLIENT_SECRET in the environment, and the rule that turns an ID token's claims into
 * the principal chat knows the person by. Checked when the configuration is loaded; the sign-in
 * itself is src/console/oidc.ts.
 *
 * `principal` is `"slack"` (`slack:<https://slack.com/team_id>:<https://slack.com/user_id>`),
 * `"microsoft"` (`teams:<tid>:<oid>`, the Teams bot's own principal) or a claim template: the
 * principal written with `{claim}` placeholders, e.g. `"okta:{tid}:{sub}"` or
 * `"keycloak:acme:{preferred_username}"`. The platform is written out; the user part names at least
 * one claim; a claim name is anything between braces (`{https://example.com/org}` works).
 */
import { z } from 'zod';
import { TollgateError } from '../common/errors.ts';
import { isLoopbackHost } from '../common/loopback.ts';
import { PLATFORM_NAME } from '../common/principals.ts';

type Part = { literal: string } | { claim: string };

export interface PrincipalRule {
  /** As configured: `slack`, `microsoft` or the template. */
  readonly source: string;
  readonly platform: string;
  readonly tenant: readonly Part[];
  readonly user: readonly Part[];
}

const PRESETS: Record<string, string> = {
  slack: 'slack:{https://slack.com/team_id}:{https://slack.com/user_id}',
  microsoft: 'teams:{tid}:{oid}',
};

/** Splits `a:{b:c}:d` on the colons outside braces, and each piece into literals and `{claim}`s. */
function splitTemplate(t: string): Part[][] | string {
  const segments: Part[][] = [[]];
  let literal = '';
  const flush = () => {
    if (literal) segments[segments.length - 1]?.push({ literal });
    literal = '';
  };
  for (let i = 0; i < t.length; i++) {
    const c = t[i] as string;
    if (c === '{') {
      const end = t.indexOf('}', i);
      const name = end < 0 ? '' : t.slice(i + 1, end);
      if (!name || name.includes('{')) return `has a "{" at position ${i + 1} without a claim name and a closing "}"`;
      flush();
      segments[segments.length - 1]?.push({ claim: name });
      i = end;
    } else if (c === '}') {
      return `has a "}" at position ${i + 1} without its "{"`;
    } else if (c === ':') {
      flush();
      segments.push([]);
    } else if (/\s/.test(c)) {
      return 'contains white space; a principal has none';
    } else {
      literal += c;
    }
  }
  flush();
  return segments;
}

/** Reads `console.oidc.principal`; a string saying what is wrong when it is not a rule. */
export function parsePrincipalRule(source: string): PrincipalRule | string {
  const split = splitTemplate(PRESETS[source] ?? source);
  if (typeof split === 'string') return split;
  if (split.length !== 3) return `must be "slack", "microsoft" or a template written platform:tenant:user with {claim} placeholders, e.g. "okta:{tid}:{sub}"`;
  const [platformParts, tenant, user] = split as [Part[], Part[], Part[]];
  const platform = platformParts.length === 1 && 'literal' in platformParts[0]! ? platformParts[0].literal : undefined;
  if (!platform || !PLATFORM_NAME.test(platform)) return 'must start with a platform name written out in lower case (e.g. "okta:"), not a claim';
  if (platform === 'cli') return "may not make cli: principals, which are the command line's own";
  if (tenant.length === 0 || user.length === 0) return 'needs a tenant and a user part after the platform';
  if (!user.some((p) => 'claim' in p)) return 'must name a claim in its user part (e.g. {sub}): otherwise everyone who signs in is the same person';
  return { source, platform, tenant, user };
}

/** The principal an ID token's claims make, or the claim that is missing or unusable. */
export function principalFromClaims(
  rule: PrincipalRule,
  claims: Readonly<Record<string, unknown>>,
): { principal: string; tenant: string } | { problem: string } {
  const fill = (parts: readonly Part[]): string | { problem: string } => {
    let out = '';
    for (const p of parts) {
      if ('literal' in p) {
        out += p.literal;
        continue;
      }
      const v = claims[p.claim];
      const s = typeof v === 'string' || typeof v === 'number' ? String(v) : '';
      if (!s) return { problem: `The identity provider's ID token has no "${p.claim}" claim, which console.oidc.principal (${rule.source}) needs.` };
      if (/[:\s]/.test(s))
        return { problem: `The "${p.claim}" claim of the ID token ("${s}") contains a colon or white space, so it cannot be part of a principal.` };
      out += s;
    }
    return out;
  };
  const tenant = fill(rule.tenant);
  if (typeof tenant !== 'string') return tenant;
  const user = fill(rule.user);
  if (typeof user !== 'string') return user;
  return { principal: `${rule.platform}:${tenant}:${user}`, tenant };
}

/** An issuer must be https; plain http only on a loopback address (tests, a local identity provider). */
export function issuerProblem(issuer: string): string | undefined {
  let u: URL;
  try {
    u = new URL(issuer);
  } catch {
    return 'is not a URL';
  }
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && isLoopbackHost(u.hostname)) return undefined;
  return 'must be an https URL (plain http is accepted only on a loopback address such as 127.0.0.1, for tests and local identity providers)';
}

/** `console.oidc` in the project configuration; every field may also come from the environment. */
export const oidcProjectSchema = z.strictObject({
  issuer: z
    .string()
    .superRefine((s, ctx) => {
      const p = issuerProblem(s);
      if (p) ctx.addIssue({ code: 'custom', message: p });
    })
    .optional(),
  clientId: z.string().min(1).optional(),
  principal: z
    .string()
    .superRefine((s, ctx) => {
      const r = parsePrincipalRule(s);
      if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
    })
    .optional(),
});

export type OidcProjectConfig = z.infer<typeof oidcProjectSchema>;

/** What the environment says (src/config/config.ts). */
export interface OidcEnv {
  readonly issuer: string | undefined;
  readonly clientId: string | undefined;
  readonly clientSecret: string | undefined;
}

export interface OidcSettings {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string | undefined;
  readonly principal: PrincipalRule;
}

/**
 * The sign-in's settings from both places, or undefined when neither names an issuer. A value set
 * in both must be the same; the principal rule defaults by issuer (slack.com: "slack",
 * login.microsoftonline.com: "microsoft") and must be given for any other.
 */
export function resolveOidcSettings(env: OidcEnv, project: OidcProjectConfig | undefined): OidcSettings | undefined {
  const problems: string[] = [];
  const pick = (name: 'issuer' | 'clientId', variable: string): string | undefined => {
    const a = project?.[name];
    const b = env[name];
    if (a !== undefined && b !== undefined && a !== b) problems.push(`console.oidc.${name} is "${a}" but ${variable} is "${b}": set one of them`);
    return a ?? b;
  };
  const issuer = pick('issuer', 'TOLLGATE_OIDC_ISSUER');
  const clientId = pick('clientId', 'TOLLGATE_OIDC_CLIENT_ID');
  if (issuer === undefined && clientId === undefined && project === undefined) return undefined;
  if (issuer === undefined) problems.push('console.oidc needs an issuer (console.oidc.issuer or TOLLGATE_OIDC_ISSUER)');
  if (clientId === undefined) problems.push('console.oidc needs a client id (console.oidc.clientId or TOLLGATE_OIDC_CLIENT_ID)');
  const issuerIssue = issuer === undefined ? undefined : issuerProblem(issuer);
  if (issuerIssue) problems.push(`the issuer "${issuer}" ${issuerIssue}`);
  let source = project?.principal;
  if (source === undefined && issuer !== undefined && !issuerIssue) {
    const host = new URL(issuer).hostname;
    source = host === 'slack.com' ? 'slack' : host === 'login.microsoftonline.com' ? 'microsoft' : undefined;
    if (!source)
      problems.push(`console.oidc.principal must say how a ${host} ID token names a person: "slack", "microsoft" or a template such as "okta:{tid}:{sub}"`);
  }
  const rule = source === undefined ? undefined : parsePrincipalRule(source);
  if (typeof rule === 'string') problems.push(`console.oidc.principal "${source}" ${rule}`);
  if (problems.length > 0 || !issuer || !clientId || !rule || typeof rule === 'string') {
    throw new TollgateError('TG_CONFIG_INVALID', `The console's OpenID Connect sign-in is not configured right:\n  ${problems.join('\n  ')}`);
  }
  return { issuer, clientId, clientSecret: env.clientSecret, principal: rule };
}
