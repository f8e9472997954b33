/**
 * The HTTP door of a real `tollgate start` (a child process on a test database), as the internet
 * meets it: a refused body ends its connection at once, slow clients are cut off by the timeouts
 * while /healthz keeps answering, connections beyond the budget are refused while health checks
 * still get in, and a refusal names nothing of the inside (the log does, under the request id).
 *
 * Every request here opens a connection of its own (`agent: false`), so the connections the
 * server holds are only those a test means it to hold.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeBotIdentity, teamsActivities, newUser, newConversation, type FakeBotIdentity } from './fakes/teams/index.ts';
import { startFakeSlack, type FakeSlack } from './fakes/slack/server.ts';
import { startAppProcess, type AppProcess } from './helpers/app-process.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { poll, holdsFor } from './helpers/poll.ts';

const HEADERS_TIMEOUT_MS = 2000;
const REQUEST_TIMEOUT_MS = 4000;
const MAX_CONNECTIONS = 250;
const SIGNING_SECRET = 'door-signing-secret-1234';

let db: TestDb;
let slack: FakeSlack;
let identity: FakeBotIdentity;
let app: AppProcess;

beforeAll(async () => {
  db = await createTestDb();
  slack = await startFakeSlack({ token: 'xoxb-door' });
  identity = await startFakeBotIdentity();
  // Teams is configured, but its keys live at a host that does not resolve (.invalid never does).
  const teams = { ...identity.settings(), ToBotFromChannelOpenIdMetadataUrl: 'https://login.botframework.invalid/v1/.well-known/openidconfiguration' };
  app = await startAppProcess({
    DATABASE_URL: db.url,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_BOT_TOKEN: 'xoxb-door',
    SLACK_API_URL: slack.apiUrl,
    ...Object.fromEntries(Object.entries(teams).map(([k, v]) => [k, String(v)])),
    ...identity.env(),
    TOLLGATE_HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    TOLLGATE_HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    TOLLGATE_HTTP_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
  });
}, 120_000);

afterAll(async () => {
  app?.kill('SIGKILL');
  await app?.exited;
  await slack?.close();
  await identity?.stop();
  await db?.close();
});

const ROUTES = ['/slack/events', '/api/messages', '/console/audit/verify'];

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a connection of its own; a reset after the answer has arrived is the server closing, not a failure. */
function request(path: string, o: { method?: string; body?: Buffer | string; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${app.url}${path}`,
      { method: o.method ?? 'GET', agent: false, headers: o.headers, signal: AbortSignal.timeout(o.timeoutMs ?? 10_000) },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && e.code !== 'ECONNRESET') reject(e);
    });
    req.end(o.body);
  });
}

/** A socket that connects and then sends `first`, and nothing more unless told. */
function rawSocket(first = ''): Promise<net.Socket & { ended: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(app.port, '127.0.0.1') as net.Socket & { ended: Promise<string> };
    let received = '';
    s.on('data', (d: Buffer) => (received += d.toString()));
    s.ended = new Promise((r) => s.once('close', () => r(received)));
    s.on('error', () => {});
    s.once('connect', () => {
      if (first) s.write(first);
      resolve(s);
    });
    s.once('error', reject);
  });
}

describe('the HTTP door of tollgate start', () => {
  it('20 refused 5 MB bodies leave no connection open within 1 s, each answered at once with Connection: close', async () => {
    await poll(async () => (await app.openConnections()) === 0, { message: 'no connection open before the test' });
    const body = Buffer.alloc(5_000_000, 'a');
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        // Slack and Teams refuse it over their size limits (413), the console a form posted from elsewhere (403).
        const path = ROUTES[i % 3] as string;
        return request(path, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      }),
    );
    await poll(async () => (await app.openConnections()) === 0, { message: 'the refused connections to be closed', timeoutMs: 1000, intervalMs: 50 });
    expect(answers.map((a) => a.status)).toEqual(answers.map((_, i) => (i % 3 === 2 ? 403 : 413)));
    expect(answers.every((a) => a.headers.connection === 'close')).toBe(true);
  });

  it('200 slow-header clients are cut off by the headers timeout while /healthz answers within a second', async () => {
    const openedAt = Date.now();
    const slow = await Promise.all(Array.from({ length: 200 }, () => rawSocket('POST /slack/events HTTP/1.1\r\nHost: tollgate\r\n')));
    // Each drips a header line now and then, never finishing its headers.
    const drip = setInterval(() => {
      for (const s of slow) if (!s.destroyed) s.write('X-Slow: yes\r\n');
    }, 300);
    try {
      let probes = 0;
      const allClosed = Promise.all(slow.map((s) => s.ended));
      let done = false;
      void allClosed.then(() => (done = true));
      while (!done) {
        const started = Date.now();
        const res = await request('/healthz', { timeoutMs: 1000 });
        expect(res.status).toBe(200);
        expect(Date.now() - started).toBeLessThan(1000);
        probes++;
        if (Date.now() - openedAt > HEADERS_TIMEOUT_MS + 10_000) break;
      }
      const answers = await allClosed;
      // Cut off by the door: a 408, within the timeout and the second the check may take (plus slack for a busy machine).
      expect(answers.every((a) => a.startsWith('HTTP/1.1 408'))).toBe(true);
      expect(Date.now() - openedAt).toBeLessThan(HEADERS_TIMEOUT_MS + 8000);
      expect(probes).toBeGreaterThan(1);
    } finally {
      clearInterval(drip);
      for (const s of slow) s.destroy();
    }
  }, 60_000);

  it('a client that trickles its body is cut off by the request timeout', async () => {
    const s = await rawSocket(`POST /api/messages HTTP/1.1\r\nHost: tollgate\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`);
    const drip = setInterval(() => s.write(' '), 300);
    try {
      const openedAt = Date.now();
      const answer = await s.ended;
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
      expect(Date.now() - openedAt).toBeLessThan(REQUEST_TIMEOUT_MS + 5000);
    } finally {
      clearInterval(drip);
      s.destroy();
    }
  }, 30_000);

  it('beyond the connection budget new connections are refused at once, while /healthz and /readyz still answer', async () => {
    await poll(async () => (await app.openConnections()) === 0, { message: 'no connection open before the flood' });
    // The flood: as many connections as the budget, each sending half a request and waiting.
    const flood = await Promise.all(Array.from({ length: MAX_CONNECTIONS }, () => rawSocket('GET /metrics HTTP/1.1\r\n')));
    try {
      await poll(async () => (await app.openConnections()) >= MAX_CONNECTIONS, { message: 'the flood to be inside' });
      // A chat request now is turned away at once, and says why.
      const refused = await request('/slack/events', { method: 'POST', body: '{}', timeoutMs: 2000 });
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      // The health checks still get in, one answer per connection (it asks for keep-alive, and is closed).
      const probe = await rawSocket('GET /healthz HTTP/1.1\r\nHost: tollgate\r\n\r\n');
      const answer = await probe.ended;
      expect(answer).toMatch(/^HTTP\/1\.1 200/);
      expect(answer).toMatch(/connection: close/i);
      expect((await request('/readyz', { timeoutMs: 3000 })).status).toBe(200);
      // Beyond the reserve kept for health checks, connections are dropped at accept.
      const extra = await Promise.all(Array.from({ length: 40 }, () => rawSocket()));
      const dropped = await Promise.all(extra.map((s) => Promise.race([s.ended.then(() => true), new Promise((r) => setTimeout(() => r(false), 3000))])));
      expect(dropped.every(Boolean)).toBe(true);
    } finally {
      for (const s of flood) s.destroy();
    }
    await poll(async () => (await app.openConnections()) === 0, { message: 'the flood to be gone' });
  }, 60_000);

  it('a 401 for a token whose keys cannot be fetched names no host nor error; the log does, under the request id', async () => {
    const act = teamsActivities({ serviceUrl: 'https://smba.trafficmanager.net/teams/', appId: identity.appId });
    const activity = act.message({ text: 'help', from: newUser(), tenant: 'tenant-1', conversation: newConversation('personal') });
    const token = identity.mint({ serviceUrl: String(activity.serviceUrl) });
    const res = await request('/api/messages', {
      method: 'POST',
      body: JSON.stringify(activity),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(401);
    const requestId = res.headers['x-request-id'];
    expect(requestId).toMatch(/^req_/);
    const body = JSON.parse(res.body) as { error: string; requestId: string };
    expect(body).toEqual({ error: 'Unauthorized: the request could not be authenticated.', requestId });
    expect(res.body).not.toMatch(/invalid|ENOTFOUND|getaddrinfo|botframework/i);
    const line = await poll(() => app.logLines().find((l) => l.requestId === requestId), { message: 'the log line of the refusal' });
    expect(JSON.stringify(line)).toMatch(/ENOTFOUND|login\.botframework\.invalid/);
  });

  it('keeps a keep-alive connection that was answered in full', async () => {
    // The door closes connections whose body was not read, not every connection.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 3; i++) {
        await new Promise<void>((resolve, reject) => {
          http
            .get(`${app.url}/healthz`, { agent }, (res) => {
              expect(res.headers.connection).toBe('keep-alive');
              res.resume().on('end', resolve);
            })
            .on('error', reject);
        });
      }
      await holdsFor(async () => (await app.openConnections()) === 1, { message: 'the kept-alive connection stays open', forMs: 300 });
    } finally {
      agent.destroy();
    }
  });
});
