/**
 * A local Microsoft identity for Bot Framework tests: everything botbuilder 4.23 asks of Azure AD
 * and the Bot Connector's token service, on one 127.0.0.1 server, so the unmodified
 * `ConfigurationBotFrameworkAuthentication` can run offline.
 *
 * - Inbound (channel → bot): `GET /.well-known/openid-configuration` names `jwks_uri`
 *   (`GET /keys`), which publishes one RSA signing key with `endorsements: ['msteams']`, as the
 *   real Bot Framework JWKS does. `mint()` signs channel tokens with it (RS256, node:crypto) and
 *   its variants make the refusals botbuilder must produce. The issuer is
 *   `http://127.0.0.1:PORT/issuer`: not an Azure AD or emulator issuer, so botbuilder takes its
 *   channel path (the one real Teams traffic takes).
 * - Outbound (bot → connector): an App Service managed-identity endpoint (`GET /msi/token`), the
 *   only token route that works offline (the password route goes through MSAL, which insists on
 *   https and asks login.microsoftonline.com first). @azure/identity 4.13 (msal-node 5.6) calls it
 *   when `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` are in process.env: `api-version=2019-08-01`,
 *   `resource=https://api.botframework.com`, `client_id=<app id>`, header `X-IDENTITY-HEADER`.
 *   Every call gets the same `accessToken`, which the connector fake insists on.
 *
 * Per-process caches outlive any one fake, so mind them:
 * - msal-node keeps the first managed-identity source it builds (with the IDENTITY_ENDPOINT of the
 *   moment) in a static field, and its tokens in a static cache: one identity fake per process
 *   (vitest runs each file in its own process), started before the first outbound call.
 * - botbuilder caches access tokens by app id + scope (`AppCredentials.cache`) and JWKS by
 *   metadata URL for 24 h (`JwtTokenExtractor.openIdMetadataCache`); `rotateKey()` is only seen
 *   after clearing the latter (both from botframework-connector).
 */
import crypto, { type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface IdentityRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  at: number;
}

export interface MintOptions {
  /** Becomes the `serviceurl` claim; botbuilder requires it to equal `activity.serviceUrl`. */
  serviceUrl: string;
  /** `aud`; defaults to the fake's app id. */
  audience?: string;
  /** `iss`; defaults to the fake's issuer. */
  issuer?: string;
  /** `exp` an hour ago (past botbuilder's 300 s clock tolerance). */
  expired?: boolean;
  /** `nbf` an hour ahead. */
  notYetValid?: boolean;
  /** Signed by the real key, but the header names a `kid` the JWKS does not publish. */
  unknownKid?: boolean;
  /** The real `kid`, but signed by another key. */
  forgedSignature?: boolean;
  /** `alg: none`, no signature (the real `kid`). */
  algNone?: boolean;
  /** `alg: HS256` with the published public key as the HMAC secret (algorithm confusion). */
  algHs256?: boolean;
  /** Extra or replaced claims. */
  claims?: Record<string, unknown>;
}

/** The options object for botbuilder's `ConfigurationBotFrameworkAuthentication` (a type, not an interface, so it fits that index-signed type). */
export type BotFrameworkSettings = {
  MicrosoftAppId: string;
  MicrosoftAppType: 'UserAssignedMsi';
  MicrosoftAppTenantId: string;
  ToBotFromChannelTokenIssuer: string;
  ToBotFromChannelOpenIdMetadataUrl: string;
  ToBotFromEmulatorOpenIdMetadataUrl: string;
  ToChannelFromBotLoginUrl: string;
  ToChannelFromBotOAuthScope: string;
  OAuthUrl: string;
  ValidateAuthority: boolean;
  CallerId: string;
};

export interface FakeBotIdentity {
  readonly url: string;
  readonly appId: string;
  readonly tenantId: string;
  readonly issuer: string;
  readonly openIdMetadataUrl: string;
  /** The one access token the managed-identity endpoint hands out. */
  readonly accessToken: string;
  /** The `kid` of the key currently published. */
  readonly kid: string;
  /** Every request to this server, in order. */
  readonly requests: IdentityRequest[];
  /** The managed-identity token requests only. */
  tokenRequests(): IdentityRequest[];
  /** A channel → bot JWT (without the `Bearer ` prefix). */
  mint(opts: MintOptions): string;
  /** Replace the signing key (the old one is no longer published); returns the new `kid`. */
  rotateKey(): string;
  /** Settings for `new ConfigurationBotFrameworkAuthentication(...)`, every endpoint here. */
  settings(appId?: string): BotFrameworkSettings;
  /** What @azure/identity reads from process.env to find the managed-identity endpoint. */
  env(): { IDENTITY_ENDPOINT: string; IDENTITY_HEADER: string };
  stop(): Promise<void>;
}

const b64url = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

function newKey() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid: crypto.randomBytes(8).toString('hex'), publicKey, privateKey };
}

export async function startFakeBotIdentity(opts: { appId?: string; tenantId?: string } = {}): Promise<FakeBotIdentity> {
  const appId = opts.appId ?? crypto.randomUUID();
  const tenantId = opts.tenantId ?? crypto.randomUUID();
  const identityHeader = `msi-secret-${crypto.randomBytes(8).toString('hex')}`;
  const accessToken = `msi-access-${crypto.randomBytes(16).toString('hex')}`;
  const requests: IdentityRequest[] = [];
  let key = newKey();
  let forger: KeyObject | undefined;
  let base = '';

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    requests.push({ method: req.method ?? '', path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, at: Date.now() });
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET') return send(405, { error: 'method_not_allowed' });
    if (url.pathname === '/.well-known/openid-configuration') {
      return send(200, { issuer: `${base}/issuer`, jwks_uri: `${base}/keys`, id_token_signing_alg_values_supported: ['RS256'] });
    }
    if (url.pathname === '/keys') {
      const { n, e, kty } = key.publicKey.export({ format: 'jwk' });
      return send(200, { keys: [{ kty, use: 'sig', kid: key.kid, n, e, endorsements: ['msteams'] }] });
    }
    if (url.pathname === '/msi/token') {
      // Refusals shaped after App Service's; msal-node only needs a non-2xx to fail.
      if (req.headers['x-identity-header'] !== identityHeader)
        return send(401, { error: 'unauthorized', error_description: 'X-IDENTITY-HEADER missing or wrong' });
      if (url.searchParams.get('api-version') !== '2019-08-01') return send(400, { error: 'invalid_request', error_description: 'unsupported api-version' });
      const resource = url.searchParams.get('resource');
      if (!resource) return send(400, { error: 'invalid_request', error_description: 'resource is required' });
      return send(200, {
        access_token: accessToken,
        expires_on: String(Math.floor(Date.now() / 1000) + 3600),
        resource,
        token_type: 'Bearer',
        client_id: url.searchParams.get('client_id') ?? undefined,
      });
    }
    send(404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = `${base}/issuer`;

  const mint = (m: MintOptions): string => {
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      serviceurl: m.serviceUrl,
      iss: m.issuer ?? issuer,
      aud: m.audience ?? appId,
      iat: now - 5,
      nbf: m.notYetValid ? now + 3600 : now - 5,
      exp: m.expired ? now - 3600 : now + 3600,
      ...m.claims,
    };
    const alg = m.algNone ? 'none' : m.algHs256 ? 'HS256' : 'RS256';
    const header = { alg, typ: 'JWT', kid: m.unknownKid ? `unknown-${key.kid}` : key.kid, x5t: key.kid };
    const input = `${b64url(header)}.${b64url(payload)}`;
    if (m.algNone) return `${input}.`;
    if (m.algHs256) {
      const secret = key.publicKey.export({ format: 'pem', type: 'spki' });
      return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
    }
    if (m.forgedSignature) forger ??= newKey().privateKey;
    return `${input}.${crypto.sign('sha256', Buffer.from(input), m.forgedSignature ? forger! : key.privateKey).toString('base64url')}`;
  };

  return {
    url: base,
    appId,
    tenantId,
    issuer,
    openIdMetadataUrl: `${base}/.well-known/openid-configuration`,
    accessToken,
    get kid() {
      return key.kid;
    },
    requests,
    tokenRequests: () => requests.filter((r) => r.path === '/msi/token'),
    mint,
    rotateKey: () => {
      key = newKey();
      return key.kid;
    },
    // botbuilder takes these values as given once any endpoint key is set (nothing is defaulted),
    // so all of them are here. ToChannelFromBotOAuthScope stays the real one: it is the
    // `resource` asked of the token endpoint and the `audience` of outbound calls. The login and
    // OAuth URLs are unused on the managed-identity route (and the user-token OAuth API is not
    // faked); they point here so that nothing can reach Microsoft. ChannelService is left out: it
    // only picks built-in defaults, which these values replace.
    settings: (id = appId) => ({
      MicrosoftAppId: id,
      MicrosoftAppType: 'UserAssignedMsi',
      MicrosoftAppTenantId: tenantId,
      ToBotFromChannelTokenIssuer: issuer,
      ToBotFromChannelOpenIdMetadataUrl: `${base}/.well-known/openid-configuration`,
      ToBotFromEmulatorOpenIdMetadataUrl: `${base}/.well-known/openid-configuration`,
      ToChannelFromBotLoginUrl: `${base}/${tenantId}`,
      ToChannelFromBotOAuthScope: 'https://api.botframework.com',
      OAuthUrl: `${base}/oauth`,
      ValidateAuthority: true,
      CallerId: 'urn:botframework:azure',
    }),
    env: () => ({ IDENTITY_ENDPOINT: `${base}/msi/token`, IDENTITY_HEADER: identityHeader }),
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
