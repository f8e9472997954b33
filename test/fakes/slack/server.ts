/**
 * A local fake of Slack's Web API, for the unmodified `@slack/web-api` client (point it here with
 * `slackApiUrl: fake.apiUrl`).
 *
 * - Methods: auth.test, chat.postMessage, chat.update, chat.postEphemeral, views.open,
 *   views.update, views.publish, conversations.open, users.info. Anything else answers
 *   `{ok: false, error: 'unknown_method'}`.
 * - People: `users.info` answers `{ok, user: {id, team_id, name}}` with the handle only (the user
 *   id in lower case), as for a person with no profile name; `setUser(id, {realName,
 *   displayName})` gives a person the names Slack would answer (`user.real_name`,
 *   `user.profile.real_name`, `user.profile.display_name`), and calling it again renames them.
 * - Requests are POSTs to `/api/<method>` with `Authorization: Bearer <token>`; bodies are
 *   form-encoded (nested values as JSON strings, as the client sends them) or JSON. A wrong token
 *   answers `invalid_auth`.
 * - Every call is recorded (`calls`, `callsTo(method)`), with nested JSON arguments parsed.
 * - Messages are kept per channel and `ts` (`message(channel, ts)`, `messagesIn(channel)`);
 *   chat.update changes them in place, as Slack does.
 * - Failures on demand: `failNext('chat.update', { status: 429, retryAfter: 1 })` (HTTP 429 with
 *   a `Retry-After` header and `{ok:false, error:'ratelimited'}`), `{ status: 500 }`, or
 *   `{ error: 'channel_not_found' }` (HTTP 200, ok:false); `times` repeats it; `channel` limits it to
 *   calls for one channel.
 * - An outage on demand: `failAll({ status: 429, retryAfter: 1 })` makes every call of every method
 *   fail that way (recorded, as Slack would still see it) until the returned `end()` is called
 *   (the chaos suite, test/fixtures/chaos/).
 * - Slowness on demand: `hold('chat.postEphemeral')` keeps the next such call waiting (recorded,
 *   unanswered) until the returned `release()` is called.
 * - Socket Mode: `apps.connections.open` (app-level `xapp-` token) answers a ws:// URL on this
 *   server; `socketMode.push(type, payload)` sends an envelope and resolves with the ack
 *   (test/fakes/slack/socket.ts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse as parseQuery } from 'node:querystring';
import { attachSocketMode, type FakeSocketMode } from './socket.ts';

export interface RecordedCall {
  method: string;
  args: Record<string, unknown>;
  token: string | undefined;
  at: number;
}

export interface FakeMessage {
  channel: string;
  ts: string;
  thread_ts?: string;
  text?: string;
  blocks?: unknown[];
  /** How many times chat.update changed it. */
  updates: number;
}

export interface Failure {
  status?: number;
  retryAfter?: number;
  error?: string;
  times?: number;
  /** Only calls for this channel fail (others answer normally). */
  channel?: string;
}

export interface FakeSlack {
  readonly apiUrl: string;
  readonly calls: RecordedCall[];
  readonly botUserId: string;
  readonly botId: string;
  readonly teamId: string;
  callsTo(method: string): RecordedCall[];
  message(channel: string, ts: string): FakeMessage | undefined;
  messagesIn(channel: string): FakeMessage[];
  failNext(method: string, failure: Failure): void;
  /** Every call fails with `failure` (its `times` and `channel` are ignored) until `end()`. */
  failAll(failure: Failure): { end(): void };
  /** The next call of `method` waits, unanswered, until `release()`; `answered` says when it was answered. */
  hold(method: string): { release(): void; readonly answeredAt: number | undefined };
  /** What `users.info` answers for this user from now on: their full and display names. */
  setUser(id: string, names: { realName?: string; displayName?: string }): void;
  /** Socket Mode: `apps.connections.open` (with an `xapp-` token) leads here. */
  readonly socketMode: FakeSocketMode;
  close(): Promise<void>;
}

function parseNested(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const t = value.trim();
  if ((t.startsWith('{') && t.endsWith('}')) || (t.startsWith('[') && t.endsWith(']'))) {
    try {
      return JSON.parse(t);
    } catch {
      return value;
    }
  }
  return value;
}

export async function startFakeSlack(opts: { token?: string; teamId?: string } = {}): Promise<FakeSlack> {
  const token = opts.token ?? 'xoxb-test-token';
  const teamId = opts.teamId ?? 'T0001';
  const botUserId = 'UBOT0001';
  const botId = 'BBOT0001';
  const calls: RecordedCall[] = [];
  const messages = new Map<string, FakeMessage>();
  const failures = new Map<string, Failure[]>();
  const holds = new Map<string, { gate: Promise<void>; answered: (at: number) => void }[]>();
  const people = new Map<string, { realName?: string; displayName?: string }>();
  let outage: Failure | undefined;
  let seq = 0;
  let viewSeq = 0;
  const nextTs = () => `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, '0')}`;

  const handlers: Record<string, (a: Record<string, unknown>) => Record<string, unknown>> = {
    'auth.test': () => ({ ok: true, url: 'https://fake.slack.test/', team: 'Fake', user: 'tollgate', team_id: teamId, user_id: botUserId, bot_id: botId }),
    'chat.postMessage': (a) => {
      const channel = typeof a.channel === 'string' ? a.channel : '';
      if (!channel) return { ok: false, error: 'channel_not_found' };
      const ts = nextTs();
      const m: FakeMessage = { channel, ts, text: a.text as string | undefined, blocks: a.blocks as unknown[] | undefined, updates: 0 };
      if (typeof a.thread_ts === 'string' && a.thread_ts) m.thread_ts = a.thread_ts;
      messages.set(`${channel}/${ts}`, m);
      return { ok: true, channel, ts, message: { ts, text: m.text, blocks: m.blocks } };
    },
    'chat.update': (a) => {
      const m = messages.get(`${String(a.channel)}/${String(a.ts)}`);
      if (!m) return { ok: false, error: 'message_not_found' };
      m.text = a.text as string | undefined;
      m.blocks = a.blocks as unknown[] | undefined;
      m.updates++;
      return { ok: true, channel: m.channel, ts: m.ts, text: m.text };
    },
    'chat.postEphemeral': () => ({ ok: true, message_ts: nextTs() }),
    'views.open': (a) => ({ ok: true, view: { ...(a.view as object), id: `V${String(++viewSeq).padStart(8, '0')}` } }),
    'views.update': (a) => ({ ok: true, view: { ...(a.view as object), id: a.view_id ?? `V${String(++viewSeq).padStart(8, '0')}` } }),
    'views.publish': (a) => ({ ok: true, view: { ...(a.view as object), id: `V${String(++viewSeq).padStart(8, '0')}` } }),
    'conversations.open': (a) => ({ ok: true, channel: { id: `D${(typeof a.users === 'string' ? a.users : '').split(',')[0]}` } }),
    'users.info': (a) => {
      const id = String(a.user);
      const p = people.get(id);
      const profile = p ? { real_name: p.realName ?? '', display_name: p.displayName ?? '' } : undefined;
      return { ok: true, user: { id, team_id: teamId, name: id.toLowerCase(), ...(p ? { real_name: p.realName ?? '', profile } : {}) } };
    },
    'apps.connections.open': () => ({ ok: true, url: `ws://127.0.0.1:${port}/socket` }),
  };
  let port = 0;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0] ?? '';
      const raw = Buffer.concat(chunks).toString('utf8');
      const type = String(req.headers['content-type'] ?? '');
      let args: Record<string, unknown> = {};
      try {
        args = type.includes('application/json') ? (JSON.parse(raw || '{}') as Record<string, unknown>) : { ...parseQuery(raw) };
      } catch {
        args = {};
      }
      for (const [k, v] of Object.entries(args)) args[k] = parseNested(v);
      const auth = String(req.headers.authorization ?? '');
      const given = auth.startsWith('Bearer ') ? auth.slice(7) : (args.token as string | undefined);
      calls.push({ method, args, token: given, at: Date.now() });

      const held = holds.get(method)?.shift();
      const sendNow = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
        res.end(JSON.stringify(body));
        held?.answered(Date.now());
      };
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        if (held) void held.gate.then(() => sendNow(status, body, headers));
        else sendNow(status, body, headers);
      };
      const queue = failures.get(method) ?? [];
      const at = outage ? -1 : queue.findIndex((f) => f.channel === undefined || f.channel === args.channel);
      const failure = outage ?? (at >= 0 ? queue[at] : undefined);
      if (failure) {
        if (failure !== outage) {
          failure.times = (failure.times ?? 1) - 1;
          if (failure.times <= 0) queue.splice(at, 1);
        }
        if (failure.status === 429) return send(429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(failure.retryAfter ?? 1) });
        if (failure.status && failure.status >= 500) return send(failure.status, { ok: false, error: 'internal_error' });
        return send(200, { ok: false, error: failure.error ?? 'fatal_error' });
      }
      const appLevel = method === 'apps.connections.open';
      if (appLevel ? !given?.startsWith('xapp-') : given !== token)
        return send(200, { ok: false, error: appLevel ? 'not_allowed_token_type' : 'invalid_auth' });
      const handler = handlers[method];
      if (!handler) return send(200, { ok: false, error: 'unknown_method' });
      send(200, handler(args));
    });
  });
  const socketMode = attachSocketMode(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;

  return {
    apiUrl: `http://127.0.0.1:${port}/api/`,
    calls,
    botUserId,
    botId,
    teamId,
    callsTo: (method) => calls.filter((c) => c.method === method),
    message: (channel, ts) => messages.get(`${channel}/${ts}`),
    messagesIn: (channel) => [...messages.values()].filter((m) => m.channel === channel),
    hold: (method) => {
      let release = () => {};
      let answeredAt: number | undefined;
      const gate = new Promise<void>((r) => (release = r));
      const q = holds.get(method) ?? [];
      q.push({ gate, answered: (at) => (answeredAt = at) });
      holds.set(method, q);
      return {
        release: () => release(),
        get answeredAt() {
          return answeredAt;
        },
      };
    },
    failNext: (method, failure) => {
      const q = failures.get(method) ?? [];
      q.push({ ...failure });
      failures.set(method, q);
    },
    failAll: (failure) => {
      const mine = { ...failure };
      outage = mine;
      return {
        end: () => {
          if (outage === mine) outage = undefined;
        },
      };
    },
    setUser: (id, names) => void people.set(id, { ...names }),
    socketMode,
    close: () =>
      new Promise((resolve) => {
        socketMode.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
