/**
 * A real OpenID provider for tests: `oidc-provider` 8 (the certified provider library) on a
 * 127.0.0.1 port, with one confidential client, issuing ID tokens shaped like Slack's ("Sign in
 * with Slack": `https://slack.com/team_id`, `https://slack.com/user_id`) or Microsoft Entra ID's
 * (`tid`, `oid`). Nobody types anything: the interaction (login) is finished programmatically for
 * the person given to `signInAs`, and consent is pre-granted (`loadExistingGrant`), so a browser or
 * an HTTP client following redirects lands on the client's callback with a code.
 *
 * - `issuer`: `http://127.0.0.1:<port>` (plain http on loopback, as the console allows for tests).
 * - `signInAs(person)`: who the next sign-in is, in which claim shape.
 * - `tamperIdTokens`: while true, the token endpoint's `id_token` has one character of its
 *   signature changed on the way out (same length), so the relying party must refuse it.
 * - PKCE is required for the client, and the claims asked by scope go into the ID token
 *   (`conformIdTokenClaims: false`), as Slack and Microsoft put them there.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export type ClaimShape = 'slack' | 'microsoft';

export interface FakePerson {
  shape: ClaimShape;
  /** Slack team id, or Microsoft tenant id. */
  tenant: string;
  /** Slack user id, or Microsoft object id. */
  user: string;
  name: string;
}

export interface FakeOidc {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  signInAs(person: FakePerson): void;
  tamperIdTokens: boolean;
  close(): Promise<void>;
}

/** The principal a person signs in as, the way the console names them (`slack:T:U`, `teams:tid:oid`). */
export function principalOf(p: FakePerson): string {
  return `${p.shape === 'slack' ? 'slack' : 'teams'}:${p.tenant}:${p.user}`;
}

function claimsOf(p: FakePerson): Record<string, unknown> {
  if (p.shape === 'slack') {
    return {
      sub: p.user,
      'https://slack.com/team_id': p.tenant,
      'https://slack.com/user_id': p.user,
      name: p.name,
      email: `${p.user.toLowerCase()}@example.com`,
    };
  }
  // Microsoft's `sub` is pairwise (per application), unlike `oid`: the principal must use `oid`.
  return { sub: `pairwise-${p.user}`, tid: p.tenant, oid: p.user, name: p.name, preferred_username: `${p.name.split(' ')[0]?.toLowerCase()}@example.com` };
}

/** One character of the JWS signature changed, same length. */
function tamper(jwt: string): string {
  const [h, p, s = ''] = jwt.split('.');
  const first = s[0] === 'A' ? 'B' : 'A';
  return `${h}.${p}.${first}${s.slice(1)}`;
}

export async function startFakeOidc(opts: { redirectUris: string[]; clientId?: string; clientSecret?: string }): Promise<FakeOidc> {
  const clientId = opts.clientId ?? 'tollgate-console';
  const clientSecret = opts.clientSecret ?? 'test-client-secret-7a1c';
  const people = new Map<string, FakePerson>();
  let current: string | undefined;
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const key = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: opts.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys: [{ ...key, kid: 'fake-oidc-1', use: 'sig', alg: 'RS256' }] },
    cookies: { keys: ['fake-oidc-cookie-key-0001'] },
    pkce: { required: () => true },
    conformIdTokenClaims: false,
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
    claims: {
      openid: ['sub', 'tid', 'oid', 'https://slack.com/team_id', 'https://slack.com/user_id'],
      profile: ['name', 'preferred_username'],
      email: ['email'],
    },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, id) => {
      const p = people.get(id);
      return p ? { accountId: id, claims: () => claimsOf(p) } : undefined;
    },
    // Consent is taken as given for the scopes the client asks (a first-party application).
    loadExistingGrant: async (ctx) => {
      const accountId = ctx.oidc.session?.accountId;
      if (!accountId || !ctx.oidc.client) return undefined;
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId });
      grant.addOIDCScope('openid profile email');
      await grant.save();
      return grant;
    },
  });
  const callback = provider.callback();
  const fake: FakeOidc = {
    issuer,
    clientId,
    clientSecret,
    tamperIdTokens: false,
    signInAs: (person) => {
      const id = principalOf(person);
      people.set(id, person);
      current = id;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    void (async () => {
      if (req.url?.startsWith('/interaction/')) {
        // The login "form", filled in by the test: whoever signInAs named.
        if (!current) throw new Error('the fake OpenID provider was asked to sign someone in before signInAs()');
        await provider.interactionFinished(req, res, { login: { accountId: current } }, { mergeWithLastSubmission: false });
        return;
      }
      if (fake.tamperIdTokens && req.method === 'POST' && req.url === '/token') tamperResponse(res);
      callback(req, res);
    })().catch((e: unknown) => {
      res.writeHead(500).end(String(e));
    });
  });
  return fake;
}

/** The token response goes out with its id_token's signature changed. */
function tamperResponse(res: http.ServerResponse): void {
  const end = res.end.bind(res) as (chunk?: unknown, ...rest: unknown[]) => http.ServerResponse;
  (res as unknown as { end: typeof end }).end = (chunk?: unknown, ...rest: unknown[]) => {
    if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') {
      const text = Buffer.isBuffer(chunk) ? chunk.toString('utf8') : typeof chunk === 'string' ? chunk : '';
      try {
        const json = JSON.parse(text) as { id_token?: string };
        if (json.id_token) return end(JSON.stringify({ ...json, id_token: tamper(json.id_token) }), ...rest);
      } catch {
        // not JSON: sent as it is
      }
    }
    return end(chunk, ...rest);
  };
}
