/**
 * The Teams fakes (test/fakes/teams) checked against the real botbuilder 4.23.3, so the Teams
 * adapter's tests rest on fakes that speak the protocol botbuilder speaks. What botbuilder does
 * with each case is recorded here for the adapter's author:
 *
 * Inbound, `auth.authenticateRequest(activity, header)` rejects with
 * - AuthenticationError (statusCode 401; CloudAdapter.process answers 401):
 *     no token            'Unauthorized Access. Request is not authorized'
 *     wrong audience      'Unauthorized. Invalid AppId passed on token: <aud>'
 *     wrong issuer        'Unauthorized. No valid identity.'
 *     expired             'The token has expired'
 *     unknown kid         'Signing Key could not be retrieved.'
 *     serviceurl mismatch 'Unauthorized. ServiceUrl claim do not match.'
 *     not endorsed        'Could not validate endorsement for key: <kid> with endorsements: msteams'
 *                         (a channelId other than msteams)
 * - jsonwebtoken's errors as they are (no statusCode; CloudAdapter.process answers 500):
 *     forged signature    JsonWebTokenError 'invalid signature'
 *     alg none            JsonWebTokenError 'jwt signature is required'
 *     HS256 with the key  JsonWebTokenError 'invalid algorithm'
 *     nbf in the future   NotBeforeError 'jwt not active'
 * So: call authenticateRequest yourself and answer 401 on any rejection.
 * (botbuilder console.error()s some of these; the tests mute it.)
 *
 * Outbound, a ConnectorClient from `connectorFactory.create(serviceUrl, audience)`:
 * - fetches its token from the managed-identity endpoint (client_id = app id, resource =
 *   https://api.botframework.com) and caches it per process;
 * - retries by itself, 3 times, then throws: 429/503 with `Retry-After` after exactly that delay
 *   (7 s means three waits of 7 s, holding the caller), other 5xx and 408 with exponential
 *   backoff from 1 s; a 429 without `Retry-After` is not retried;
 * - throws a core-rest-pipeline RestError: `name 'RestError'`, `statusCode`, `code` (the body's
 *   error.code), `details` (the parsed body), and non-enumerable `response` with
 *   `response.headers.get('retry-after')`;
 * - `client.client.pipeline.removePolicy({ phase: 'Retry' })` (`client` is private in the typings)
 *   removes `defaultRetryPolicy`, its only retry policy: then a 429 throws at once, one request.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudAdapter, ConfigurationBotFrameworkAuthentication, TurnContext } from 'botbuilder';
import connectorLib from 'botframework-connector';
// Not exported from the package index; its cache is private in the typings.
import jwtTokenExtractorModule from 'botframework-connector/lib/auth/jwtTokenExtractor.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  newConversation,
  newUser,
  sendActivity,
  startFakeBotConnector,
  startFakeBotIdentity,
  teamsActivities,
  type Activity,
  type FakeBotConnector,
  type FakeBotIdentity,
  type MintOptions,
} from './fakes/teams/index.ts';

const { AuthenticationError } = connectorLib;
const jwksCache = (jwtTokenExtractorModule.JwtTokenExtractor as unknown as { openIdMetadataCache: Map<string, unknown> }).openIdMetadataCache;
type Auth = ConfigurationBotFrameworkAuthentication;
type Client = Awaited<ReturnType<ReturnType<Auth['createConnectorFactory']>['create']>>;
type BotActivity = Parameters<Auth['authenticateRequest']>[0];
type RestErrorLike = Error & { statusCode?: number; code?: string; details?: unknown; response?: { headers: { get(name: string): string | undefined } } };

let identity: FakeBotIdentity;
let connector: FakeBotConnector;
let auth: Auth;
let acts: ReturnType<typeof teamsActivities>;
const savedEnv = { IDENTITY_ENDPOINT: process.env.IDENTITY_ENDPOINT, IDENTITY_HEADER: process.env.IDENTITY_HEADER };
const user = newUser();
const personal = newConversation('personal');

beforeAll(async () => {
  identity = await startFakeBotIdentity();
  connector = await startFakeBotConnector({ accessToken: identity.accessToken });
  // @azure/identity reads these from process.env when the first token is asked for.
  Object.assign(process.env, identity.env());
  auth = new ConfigurationBotFrameworkAuthentication(identity.settings());
  acts = teamsActivities({ serviceUrl: connector.url, appId: identity.appId });
});

afterAll(async () => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await connector?.stop();
  await identity?.stop();
});

const incoming = () => acts.message({ text: 'hello', from: user, tenant: identity.tenantId, conversation: personal }) as unknown as BotActivity;
const bearer = (opts: Partial<MintOptions> = {}) => `Bearer ${identity.mint({ serviceUrl: connector.url, ...opts })}`;

async function rejection(activity: BotActivity, header: string): Promise<RestErrorLike> {
  const muted = vi.spyOn(console, 'error').mockImplementation(() => {});
  try {
    await auth.authenticateRequest(activity, header);
  } catch (err) {
    return err as RestErrorLike;
  } finally {
    muted.mockRestore();
  }
  throw new Error('authenticateRequest accepted the token');
}

describe('identity fake: botbuilder authenticateRequest', () => {
  it('accepts a minted channel token, after fetching the metadata and keys from the fake', async () => {
    const result = await auth.authenticateRequest(incoming(), bearer());
    const claims = Object.fromEntries(result.claimsIdentity.claims.map((c) => [c.type, c.value]));
    expect(claims).toMatchObject({ aud: identity.appId, iss: identity.issuer, serviceurl: connector.url });
    expect(result.callerId).toBe('urn:botframework:azure');
    expect(result.audience).toBe('https://api.botframework.com');
    expect(identity.requests.map((r) => r.path)).toEqual(expect.arrayContaining(['/.well-known/openid-configuration', '/keys']));
  });

  const authErrors: [string, Partial<MintOptions> | 'no token', string][] = [
    ['no token', 'no token', 'Unauthorized Access. Request is not authorized'],
    ['wrong audience', { audience: 'someone-else' }, 'Unauthorized. Invalid AppId passed on token: someone-else'],
    ['wrong issuer', { issuer: 'https://api.botframework.com' }, 'Unauthorized. No valid identity.'],
    ['expired', { expired: true }, 'The token has expired'],
    ['unknown kid', { unknownKid: true }, 'Signing Key could not be retrieved.'],
    ['serviceurl mismatch', { serviceUrl: 'https://smba.trafficmanager.net/amer/' }, 'Unauthorized. ServiceUrl claim do not match.'],
  ];
  it.each(authErrors)('refuses %s with a 401 AuthenticationError', async (_name, opts, message) => {
    const err = await rejection(incoming(), opts === 'no token' ? '' : bearer(opts));
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err.message).toBe(message);
    expect(err.statusCode).toBe(401);
  });

  const jwtErrors: [string, Partial<MintOptions>, string, string][] = [
    ['a forged signature', { forgedSignature: true }, 'JsonWebTokenError', 'invalid signature'],
    ['alg none', { algNone: true }, 'JsonWebTokenError', 'jwt signature is required'],
    ['HS256 keyed with the public key', { algHs256: true }, 'JsonWebTokenError', 'invalid algorithm'],
    ['a future nbf', { notYetValid: true }, 'NotBeforeError', 'jwt not active'],
  ];
  it.each(jwtErrors)('refuses %s with a bare jsonwebtoken error (no status)', async (_name, opts, name, message) => {
    const err = await rejection(incoming(), bearer(opts));
    expect(err).not.toBeInstanceOf(AuthenticationError);
    expect(err.name).toBe(name);
    expect(err.message).toBe(message);
    expect(err.statusCode).toBeUndefined();
  });

  it('publishes the key endorsed for msteams only', async () => {
    const err = await rejection({ ...incoming(), channelId: 'webchat' }, bearer());
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err.message).toBe(`Could not validate endorsement for key: ${identity.kid} with endorsements: msteams`);
  });

  it('a rotated key is only seen once botbuilder’s per-URL JWKS cache is cleared', async () => {
    identity.rotateKey();
    const err = await rejection(incoming(), bearer());
    expect(err.message).toBe('Signing Key could not be retrieved.');
    expect(jwksCache.delete(identity.openIdMetadataUrl)).toBe(true);
    await expect(auth.authenticateRequest(incoming(), bearer())).resolves.toBeDefined();
  });
});

describe('connector fake: botbuilder ConnectorClient', () => {
  let client: Client;
  const newClient = async () => {
    const result = await auth.authenticateRequest(incoming(), bearer());
    return auth.createConnectorFactory(result.claimsIdentity).create(connector.url, 'https://api.botframework.com');
  };
  const message = (text: string) => ({ type: 'message', text }) as BotActivity;
  beforeAll(async () => {
    client = await newClient();
  });

  it('creates a conversation, sends, updates, replies and lists members with the managed-identity token', async () => {
    const bot = { id: `28:${identity.appId}`, name: 'Tollgate' };
    const member = { id: user.id, aadObjectId: user.aadObjectId, name: user.name };
    const created = await client.conversations.createConversation({
      isGroup: false,
      bot,
      members: [member],
      tenantId: identity.tenantId,
      channelData: { tenant: { id: identity.tenantId } },
      activity: message('first'),
    });
    // Like Teams: the initial activity is posted, but its id is not given back.
    expect(created.id).toMatch(/^a:1/);
    expect(created.activityId).toBeUndefined();
    const record = connector.conversations.find((c) => c.id === created.id)!;
    expect(record.parameters).toMatchObject({ tenantId: identity.tenantId, members: [member] });
    expect(connector.activity(created.id, record.initialActivityId!)?.activity.text).toBe('first');

    const sent = await client.conversations.sendToConversation(created.id, message('card v1'));
    await client.conversations.updateActivity(created.id, sent.id, { ...message('card v2'), id: sent.id });
    const reply = await client.conversations.replyToActivity(created.id, sent.id, message('a reply'));
    expect(connector.activity(created.id, sent.id)).toMatchObject({ updates: 1, activity: { text: 'card v2', id: sent.id } });
    expect(connector.activity(created.id, reply.id)?.activity).toMatchObject({ text: 'a reply', replyToId: sent.id });
    expect(connector.activitiesIn(created.id).map((a) => a.activity.text)).toEqual(['first', 'card v2', 'a reply']);
    expect(await client.conversations.getConversationMembers(created.id)).toEqual([member]);
    expect(await client.conversations.getConversationMember(created.id, user.id)).toEqual(member);

    expect(connector.calls.map((c) => c.operation)).toEqual(
      expect.arrayContaining([
        'createConversation',
        'sendToConversation',
        'updateActivity',
        'replyToActivity',
        'getConversationMembers',
        'getConversationMember',
      ]),
    );
    expect(connector.calls.every((c) => c.token === identity.accessToken)).toBe(true);
    const tokenRequest = identity.tokenRequests()[0]!;
    expect(tokenRequest.query).toEqual({ 'api-version': '2019-08-01', resource: 'https://api.botframework.com', client_id: identity.appId });
    expect(tokenRequest.headers['x-identity-header']).toBe(identity.env().IDENTITY_HEADER);
  });

  it('answers 401 without the access token, and 404 for an unknown activity or member', async () => {
    const res = await fetch(`${connector.url}v3/conversations/${encodeURIComponent(personal.id)}/activities`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer not-the-token' },
      body: JSON.stringify({ type: 'message', text: 'x' }),
    });
    expect(res.status).toBe(401);
    const unknown = (await client.conversations.updateActivity(personal.id, '42', { ...message('x'), id: '42' }).catch((e: unknown) => e)) as RestErrorLike;
    expect([unknown.statusCode, unknown.code]).toEqual([404, 'NotFound']);
    const noMember = (await client.conversations.getConversationMember(personal.id, '29:nobody').catch((e: unknown) => e)) as RestErrorLike;
    expect([noMember.statusCode, noMember.code]).toEqual([404, 'MemberNotFoundInConversation']);
  });

  it('the SDK retries 429 with Retry-After and 5xx by itself: 1 try + 3 retries, then throws', async () => {
    const before = connector.callsTo('sendToConversation').length;
    connector.failNext(2, { status: 429, retryAfter: 0, operation: 'sendToConversation' });
    await expect(client.conversations.sendToConversation(personal.id, message('after two 429'))).resolves.toHaveProperty('id');
    expect(
      connector
        .callsTo('sendToConversation')
        .slice(before)
        .map((c) => c.status),
    ).toEqual([429, 429, 201]);

    connector.failNext(4, { status: 429, retryAfter: 0, operation: 'sendToConversation' });
    const err = (await client.conversations.sendToConversation(personal.id, message('x')).catch((e: unknown) => e)) as RestErrorLike;
    expect(err.statusCode).toBe(429);
    expect(
      connector
        .callsTo('sendToConversation')
        .slice(before + 3)
        .map((c) => c.status),
    ).toEqual([429, 429, 429, 429]);

    connector.failNext(1, { status: 500, operation: 'sendToConversation' });
    await expect(client.conversations.sendToConversation(personal.id, message('after a 500'))).resolves.toHaveProperty('id');
    expect(
      connector
        .callsTo('sendToConversation')
        .slice(-2)
        .map((c) => c.status),
    ).toEqual([500, 201]);

    // Without Retry-After neither of its strategies takes a 429.
    connector.failNext(1, { status: 429, operation: 'sendToConversation' });
    const bare = (await client.conversations.sendToConversation(personal.id, message('x')).catch((e: unknown) => e)) as RestErrorLike;
    expect(bare.statusCode).toBe(429);
    expect(connector.callsTo('sendToConversation').at(-1)?.status).toBe(429);
    expect(connector.callsTo('sendToConversation').at(-2)?.status).toBe(201);
  });

  it('without the Retry-phase policy a 429 throws at once, with its status and Retry-After readable', async () => {
    const own = await newClient();
    // `client` is private in the typings; it is core-client's ServiceClient.
    const { pipeline } = (own as unknown as { client: { pipeline: { removePolicy(o: { phase: 'Retry' }): { name: string }[] } } }).client;
    expect(pipeline.removePolicy({ phase: 'Retry' }).map((p) => p.name)).toEqual(['defaultRetryPolicy']);

    const sent = await own.conversations.sendToConversation(personal.id, message('v1'));
    connector.failNext(1, { status: 429, retryAfter: 7, operation: 'updateActivity' });
    // The failure waits for updateActivity: a send goes through meanwhile.
    await own.conversations.sendToConversation(personal.id, message('unaffected'));
    const before = connector.callsTo('updateActivity').length;
    const err = (await own.conversations.updateActivity(personal.id, sent.id, { ...message('v2'), id: sent.id }).catch((e: unknown) => e)) as RestErrorLike;
    expect(err.name).toBe('RestError');
    expect(err.statusCode).toBe(429);
    expect(err.code).toBe('Throttled');
    expect(err.details).toEqual({ error: { code: 'Throttled', message: expect.any(String) } });
    expect(err.response?.headers.get('retry-after')).toBe('7');
    expect(connector.callsTo('updateActivity').length - before).toBe(1);
    expect(connector.activity(personal.id, sent.id)?.activity.text).toBe('v1');

    connector.failNext(1, { status: 503, operation: 'updateActivity' });
    const err503 = (await own.conversations.updateActivity(personal.id, sent.id, { ...message('v2'), id: sent.id }).catch((e: unknown) => e)) as RestErrorLike;
    expect([err503.statusCode, err503.code]).toEqual([503, 'ServiceError']);
    await own.conversations.updateActivity(personal.id, sent.id, { ...message('v2'), id: sent.id });
    expect(connector.activity(personal.id, sent.id)?.activity.text).toBe('v2');
  });
});

describe('activities + sendActivity: through the real CloudAdapter', () => {
  let bot: http.Server;
  let botUrl = '';
  const seen: Activity[] = [];
  const card = { type: 'AdaptiveCard', version: '1.5', body: [{ type: 'TextBlock', text: 'Approved' }] };

  beforeAll(async () => {
    const adapter = new CloudAdapter(auth);
    // A bare Node server standing in for the adapter's: CloudAdapter wants a parsed body and an
    // express-like response.
    bot = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const request = { method: req.method, headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') };
        const response = {
          status: (code: number) => void (res.statusCode = code),
          header: (name: string, value: string) => void res.setHeader(name, value),
          send: (body: unknown) => void res.write(typeof body === 'string' ? body : JSON.stringify(body)),
          end: () => void res.end(),
        };
        void adapter.process(request, response as never, async (context: TurnContext) => {
          seen.push(context.activity as unknown as Activity);
          if (context.activity.type === 'message') {
            await context.sendActivity(`echo: ${TurnContext.removeRecipientMention(context.activity).trim()}`);
          } else if (context.activity.type === 'invoke') {
            const value = { statusCode: 200, type: 'application/vnd.microsoft.card.adaptive', value: card };
            await context.sendActivity({ type: 'invokeResponse', value: { status: 200, body: value } });
          }
        });
      });
    });
    await new Promise<void>((resolve) => bot.listen(0, '127.0.0.1', resolve));
    botUrl = `http://127.0.0.1:${(bot.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => bot.close(() => resolve())));

  const token = () => identity.mint({ serviceUrl: connector.url });

  it('a channel message mentioning the bot is answered, in reply, on the connector fake', async () => {
    const channel = newConversation('channel');
    const activity = acts.message({ text: 'approve', from: user, tenant: identity.tenantId, conversation: channel, mentionBot: true });
    expect(await sendActivity(botUrl, activity, token())).toEqual({ status: 200, body: undefined });
    expect(activity.text).toBe('<at>Tollgate</at> approve');
    // (removeRecipientMention stripped the text of the very object the bot saw)
    const got = seen.at(-1)!;
    expect(got).toMatchObject({ conversation: { id: channel.id, conversationType: 'channel', tenantId: identity.tenantId } });
    expect(got.entities).toContainEqual({ type: 'mention', text: '<at>Tollgate</at>', mentioned: { id: `28:${identity.appId}`, name: 'Tollgate' } });
    const [answer] = connector.activitiesIn(channel.id);
    expect(answer?.activity).toMatchObject({ text: 'echo: approve', replyToId: activity.id });
  });

  it('an Action.Execute invoke gets its invoke response in the HTTP answer', async () => {
    const activity = acts.invoke({
      verb: 'approve',
      data: { runId: 'r1' },
      from: user,
      tenant: identity.tenantId,
      conversation: personal,
      replyToId: '1700000000000',
    });
    const res = await sendActivity(botUrl, activity, token());
    expect(res).toEqual({ status: 200, body: { statusCode: 200, type: 'application/vnd.microsoft.card.adaptive', value: card } });
    expect(seen.at(-1)).toMatchObject({ name: 'adaptiveCard/action', value: { action: { type: 'Action.Execute', verb: 'approve', data: { runId: 'r1' } } } });
  });

  it('installation and membership updates name the bot as the member added', async () => {
    const group = newConversation('groupChat');
    expect((await sendActivity(botUrl, acts.installationUpdate({ tenant: identity.tenantId, conversation: group }), token())).status).toBe(200);
    expect((await sendActivity(botUrl, acts.conversationUpdate({ tenant: identity.tenantId, conversation: group }), token())).status).toBe(200);
    const [install, update] = seen.slice(-2);
    expect(install).toMatchObject({ type: 'installationUpdate', action: 'add' });
    expect((update?.membersAdded as { id: string }[])[0]?.id).toBe((update?.recipient as { id: string }).id);
  });

  it('CloudAdapter.process answers 401 for a missing token but 500 for a forged one', async () => {
    const muted = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const activity = acts.message({ text: 'hi', from: user, tenant: identity.tenantId, conversation: personal });
      expect((await sendActivity(botUrl, activity, undefined)).status).toBe(401);
      expect((await sendActivity(botUrl, activity, identity.mint({ serviceUrl: connector.url, forgedSignature: true }))).status).toBe(500);
    } finally {
      muted.mockRestore();
    }
  });
});
