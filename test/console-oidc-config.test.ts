/**
 * The console's OpenID Connect settings are checked when the configuration loads
 * (src/config/oidc.ts): the principal rule ("slack", "microsoft" or a claim template), the issuer
 * (https, or http on loopback only), the environment and the project file agreeing, and `tenants`.
 */
import { describe, expect, it } from 'vitest';
import { isTollgateError } from '../src/common/errors.ts';
import { loadConfig } from '../src/config/config.ts';
import { parsePrincipalRule, principalFromClaims, resolveOidcSettings, type PrincipalRule } from '../src/config/oidc.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { TEST_AUDIT_ENV } from './helpers/db.ts';

const rule = (s: string) => parsePrincipalRule(s) as PrincipalRule;
const noEnv = { issuer: undefined, clientId: undefined, clientSecret: undefined };

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isTollgateError(e)) return e.message;
    throw e;
  }
  throw new Error('it was accepted');
}

describe('console.oidc settings', () => {
  it('makes Slack, Microsoft and templated principals from ID token claims', () => {
    expect(principalFromClaims(rule('slack'), { 'https://slack.com/team_id': 'T1', 'https://slack.com/user_id': 'U1', sub: 'x' })).toEqual({
      principal: 'slack:T1:U1',
      tenant: 'T1',
    });
    expect(principalFromClaims(rule('microsoft'), { tid: 'tid-1', oid: 'oid-1', sub: 'pairwise' })).toEqual({
      principal: 'teams:tid-1:oid-1',
      tenant: 'tid-1',
    });
    expect(principalFromClaims(rule('okta:{tid}:{sub}'), { tid: 'acme', sub: '00u1' })).toEqual({ principal: 'okta:acme:00u1', tenant: 'acme' });
    expect(principalFromClaims(rule('kc:corp-{org}:user-{preferred_username}'), { org: 'eu', preferred_username: 'ada' })).toEqual({
      principal: 'kc:corp-eu:user-ada',
      tenant: 'corp-eu',
    });
    expect(principalFromClaims(rule('okta:{tid}:{sub}'), { sub: '00u1' })).toEqual({
      problem: `The identity provider's ID token has no "tid" claim, which console.oidc.principal (okta:{tid}:{sub}) needs.`,
    });
    expect('problem' in principalFromClaims(rule('okta:{tid}:{sub}'), { tid: 'a:b', sub: '1' })).toBe(true);
  });

  it('refuses a template that is not one, naming why, when the project configuration loads', () => {
    for (const [template, why] of [
      ['okta:{sub}', 'platform:tenant:user'],
      ['{iss}:{tid}:{sub}', 'platform name written out'],
      ['okta:{tid}:fixed', 'must name a claim in its user part'],
      ['okta:{tid:{sub}', 'without a claim name'],
      ['cli:{tid}:{sub}', "command line's own"],
    ] as const) {
      expect(refusal(() => parseProjectConfig({ console: { oidc: { principal: template } } }))).toContain(why);
    }
  });

  it('takes an https issuer, or http on loopback only; env and file must agree', () => {
    expect(refusal(() => parseProjectConfig({ console: { oidc: { issuer: 'http://idp.example.com' } } }))).toContain('must be an https URL');
    expect(parseProjectConfig({ console: { oidc: { issuer: 'http://127.0.0.1:8080' } } }).console?.oidc?.issuer).toBe('http://127.0.0.1:8080');
    expect(refusal(() => loadConfig({ ...TEST_AUDIT_ENV, TOLLGATE_OIDC_ISSUER: 'http://idp.example.com' }))).toContain('TOLLGATE_OIDC_ISSUER');

    const fromEnv = resolveOidcSettings({ issuer: 'https://slack.com', clientId: 'c1', clientSecret: 's' }, undefined);
    expect(fromEnv).toMatchObject({ issuer: 'https://slack.com', clientId: 'c1', clientSecret: 's', principal: { source: 'slack' } });
    expect(resolveOidcSettings(noEnv, undefined)).toBeUndefined();
    expect(resolveOidcSettings(noEnv, { issuer: 'https://login.microsoftonline.com/t1/v2.0', clientId: 'c' })?.principal.source).toBe('microsoft');
    expect(refusal(() => resolveOidcSettings({ ...noEnv, issuer: 'https://a.example.com' }, { issuer: 'https://b.example.com', clientId: 'c' }))).toContain(
      'console.oidc.issuer is "https://b.example.com" but TOLLGATE_OIDC_ISSUER is "https://a.example.com"',
    );
    expect(refusal(() => resolveOidcSettings(noEnv, { issuer: 'https://idp.example.com', clientId: 'c' }))).toContain('console.oidc.principal must say how');
    expect(refusal(() => resolveOidcSettings(noEnv, { issuer: 'https://slack.com' }))).toContain('needs a client id');
  });

  it('reads the public URL (default http://<HOST>:<PORT>) and the session lifetimes', () => {
    const c = loadConfig({ ...TEST_AUDIT_ENV, HOST: '127.0.0.1', PORT: '3100' }).console;
    expect(c).toMatchObject({ publicUrl: 'http://127.0.0.1:3100', sessionIdleMs: 8 * 3_600_000, sessionMaxMs: 7 * 24 * 3_600_000 });
    expect(loadConfig({ ...TEST_AUDIT_ENV, TOLLGATE_PUBLIC_URL: 'https://tollgate.example.com/' }).console.publicUrl).toBe('https://tollgate.example.com');
  });

  it('takes tenants as Slack team ids and Microsoft tenant ids', () => {
    expect(parseProjectConfig({ tenants: ['T0123ABCD', '72f988bf-86f1-41af-91ab-2d7cd011db47'] }).tenants).toHaveLength(2);
    expect(refusal(() => parseProjectConfig({ tenants: ['slack:T1:U1'] }))).toContain('tenants.0');
  });
});
