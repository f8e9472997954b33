/**
 * Signing in to the console through OpenID Connect, with openid-client (the certified relying
 * party): discovery, authorization code + PKCE (S256), `state` and `nonce`, and the ID token's
 * checks (issuer, audience, expiry, nonce, and its signature against the issuer's keys). Nothing of
 * the protocol is written here by hand.
 *
 * - Start (`GET /console/sign-in/oidc`): a fresh state, nonce and PKCE verifier are kept
 *   server-side (tollgate.console_oidc_logins, keyed by the state's sha256, 10 minutes), together
 *   with the hash of a random cookie set on this browser (`tollgate_oidc`), and the browser is sent
 *   to the issuer's authorization endpoint.
 * - Callback (`GET /console/sign-in/oidc/callback`): the state is taken once (a replay finds
 *   nothing), must come back to the browser that started it (its cookie), and openid-client
 *   exchanges the code with the verifier and checks the ID token against the nonce. The claims make
 *   the principal (src/config/oidc.ts), whose tenant must be on the project's `tenants` list
 *   (src/chat/tenants.ts, the list chat uses). Then a session (sessions.ts).
 *
 * What it must never do: accept an ID token it did not check, take a state twice, or make a
 * session for a principal outside the tenants list.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import * as client from 'openid-client';
import type { Logger } from '../common/log.ts';
import type { OidcSettings } from '../config/oidc.ts';
import { principalFromClaims } from '../config/oidc.ts';
import { tenantOnList } from '../chat/tenants.ts';
import { insertOidcLogin, takeOidcLogin } from '../db/queries/console-sessions.ts';

export const CALLBACK_PATH = '/console/sign-in/oidc/callback';
const BROWSER_COOKIE = 'tollgate_oidc';
/** How long a sign-in may take between the redirect and the callback. */
const LOGIN_TTL_MS = 10 * 60_000;
const SCOPES = 'openid profile email';

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** A sign-in that ended: a person, or why not (shown on the sign-in page). */
export type SignInOutcome = { ok: true; principal: string; name: string | null } | { ok: false; status: number; problem: string; detail?: string };

export class OidcSignIn {
  readonly settings: OidcSettings;
  /** "Slack", "Microsoft", or the issuer's host: the sign-in button's "Sign in with …". */
  readonly provider: string;
  readonly #pool: pg.Pool;
  readonly #log: Logger;
  readonly #tenants: readonly string[];
  readonly #publicUrl: string;
  readonly #secure: boolean;
  #config: Promise<client.Configuration> | undefined;

  constructor(opts: { settings: OidcSettings; pool: pg.Pool; log: Logger; tenants: readonly string[]; publicUrl: string }) {
    this.settings = opts.settings;
    this.#pool = opts.pool;
    this.#log = opts.log.child({ component: 'console-oidc' });
    this.#tenants = opts.tenants;
    this.#publicUrl = opts.publicUrl;
    this.#secure = opts.publicUrl.startsWith('https:');
    const source = opts.settings.principal.source;
    this.provider = source === 'slack' ? 'Slack' : source === 'microsoft' ? 'Microsoft' : new URL(opts.settings.issuer).host;
  }

  /** The redirect URI to register with the identity provider. */
  get redirectUri(): string {
    return `${this.#publicUrl}${CALLBACK_PATH}`;
  }

  /**
   * The issuer's configuration, discovered once (and again after a failure). Plain http is allowed
   * only for a loopback issuer (src/config/oidc.ts checked that at load); ID token signatures are
   * always checked against the issuer's keys.
   */
  #discover(): Promise<client.Configuration> {
    if (!this.#config) {
      const { issuer, clientId, clientSecret } = this.settings;
      const execute = [client.enableNonRepudiationChecks, ...(new URL(issuer).protocol === 'http:' ? [client.allowInsecureRequests] : [])];
      const auth = clientSecret ? client.ClientSecretPost(clientSecret) : client.None();
      this.#config = client.discovery(new URL(issuer), clientId, clientSecret, auth, { execute, timeout: 10 });
      this.#config.catch(() => (this.#config = undefined));
    }
    return this.#config;
  }

  /** Where to send the browser, and the cookie that ties the callback to it. */
  async start(): Promise<{ location: string; cookie: string } | { problem: string }> {
    let config: client.Configuration;
    try {
      config = await this.#discover();
    } catch (e) {
      this.#log.warn({ err: (e as Error).message, issuer: this.settings.issuer }, 'OpenID discovery failed');
      return {
        problem: `The identity provider (${this.settings.issuer}) could not be reached or answered something unusable, so signing in is not possible right now. Try again in a moment, or sign in with a personal token.`,
      };
    }
    const state = client.randomState();
    const nonce = client.randomNonce();
    const codeVerifier = client.randomPKCECodeVerifier();
    const browser = randomBytes(32).toString('base64url');
    await insertOidcLogin(this.#pool, { stateHash: sha256(state), nonce, codeVerifier, browserHash: sha256(browser), ttlMs: LOGIN_TTL_MS });
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      scope: SCOPES,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    // Lax: the callback is a navigation from the identity provider's site (sessions.ts says why).
    const cookie = `${BROWSER_COOKIE}=${browser}; Path=/console/sign-in/oidc; HttpOnly; SameSite=Lax; Max-Age=${LOGIN_TTL_MS / 1000}${this.#secure ? '; Secure' : ''}`;
    return { location: url.href, cookie };
  }

  clearedBrowserCookie(): string {
    return `${BROWSER_COOKIE}=; Path=/console/sign-in/oidc; HttpOnly; SameSite=Lax; Max-Age=0${this.#secure ? '; Secure' : ''}`;
  }

  /** The callback: the state taken once, the code exchanged, the ID token checked, the principal and its tenant. */
  async finish(search: URLSearchParams, browserCookie: string | undefined): Promise<SignInOutcome> {
    const state = search.get('state');
    if (!state) return refused(400, 'This sign-in answer carries no state, so it cannot be matched to a sign-in started here. Start again.');
    const login = await takeOidcLogin(this.#pool, sha256(state));
    if (!login) {
      return refused(
        400,
        'This sign-in answer was already used, or does not belong to a sign-in started here (its state is unknown), so it was refused. Start again.',
      );
    }
    if (login.expired) return refused(400, 'This sign-in took longer than 10 minutes and has expired. Start again.');
    if (!browserCookie || !timingSafeEqual(sha256(browserCookie), login.browserHash)) {
      return refused(400, 'This sign-in was started in another browser (or its cookie was lost), so it was refused. Start again in this browser.');
    }
    const error = search.get('error');
    if (error) return refused(403, `The identity provider did not sign you in: ${search.get('error_description') ?? error}.`);
    let claims: Record<string, unknown> | undefined;
    try {
      const config = await this.#discover();
      const current = new URL(`${this.redirectUri}?${search.toString()}`);
      const tokens = await client.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: login.codeVerifier,
        expectedState: state,
        expectedNonce: login.nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims();
    } catch (e) {
      this.#log.warn({ err: (e as Error).message, issuer: this.settings.issuer }, 'refused an OpenID sign-in whose answer did not verify');
      return refused(403, "The identity provider's answer did not verify, so you were not signed in.", (e as Error).message);
    }
    if (!claims) return refused(403, 'The identity provider sent no ID token, so you were not signed in.');
    const made = principalFromClaims(this.settings.principal, claims);
    if ('problem' in made) return refused(403, made.problem);
    if (!tenantOnList(this.#tenants, made.tenant)) {
      this.#log.warn({ principal: made.principal, tenant: made.tenant }, 'refused a console sign-in from a tenant not on the tenants list');
      return refused(
        403,
        `You signed in as ${made.principal}, but this Tollgate serves only the workspaces and tenants its configuration lists (tenants), and ${made.tenant} is not among them. Ask an administrator to add it, or sign in with an account of a listed one.`,
      );
    }
    const name = typeof claims.name === 'string' && claims.name ? claims.name : null;
    return { ok: true, principal: made.principal, name };
  }
}

function refused(status: number, problem: string, detail?: string): SignInOutcome {
  return { ok: false, status, problem, ...(detail ? { detail } : {}) };
}
