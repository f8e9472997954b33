/**
 * A local Bot Connector (a Teams `serviceUrl`) for the unmodified botframework-connector
 * `ConnectorClient`: point activities' `serviceUrl` at `fake.url`.
 *
 * - Routes and verbs as connectorApi/operations/conversations.js sends them: createConversation
 *   `POST /v3/conversations`, sendToConversation `POST …/{conversationId}/activities`,
 *   replyToActivity `POST …/activities/{activityId}`, updateActivity `PUT …/activities/{id}`,
 *   deleteActivity `DELETE …/activities/{id}`, getConversationMembers `GET …/members`,
 *   getConversationMember `GET …/members/{memberId}`. Path segments arrive URL-encoded (Teams ids
 *   hold `:`, `@`, `;`) and are decoded here.
 * - Every call must carry `Authorization: Bearer <accessToken>` (the identity fake's managed
 *   identity token), else 401 with the connector's ASP.NET-style body.
 * - Like Teams, createConversation with an initial `activity` posts it but answers no activity
 *   id, so that copy cannot be updated later.
 * - Every call is recorded (`calls`); posted activities are kept with their current state after
 *   updates (`activity(conversationId, id)`, `activitiesIn(conversationId)`). Any conversation id
 *   is accepted (a user who wrote to the bot has one); `conversations` holds those created here.
 * - Failures on demand: `failNext(n, { status: 429, retryAfter: 7 })`, `{ status: 500 }`, or any
 *   status with a `code`, optionally only for one `operation` or `conversationId`. Error bodies
 *   are `{ error: { code, message } }` as the connector's ErrorResponse; the codes used for 429
 *   and 5xx (`Throttled`, `ServiceError`) follow Teams' docs loosely — only the status and
 *   `Retry-After` are what a client may rely on.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type ConnectorOperation =
  | 'createConversation'
  | 'sendToConversation'
  | 'replyToActivity'
  | 'updateActivity'
  | 'deleteActivity'
  | 'getConversationMembers'
  | 'getConversationMember'
  | 'unknown';

export interface ConnectorCall {
  operation: ConnectorOperation;
  method: string;
  path: string;
  conversationId?: string;
  activityId?: string;
  /** The bearer token given, if any. */
  token: string | undefined;
  body: unknown;
  /** The status answered. */
  status: number;
  at: number;
}

export interface StoredActivity {
  conversationId: string;
  id: string;
  /** The activity as last posted or updated (with `id`, `replyToId` and `conversation.id` set). */
  activity: Record<string, unknown>;
  /** How many times updateActivity changed it. */
  updates: number;
  deleted: boolean;
}

export interface CreatedConversation {
  id: string;
  /** The ConversationParameters as posted (bot, members, tenantId, isGroup, channelData, activity). */
  parameters: Record<string, unknown>;
  /** The id Teams would have given the initial activity; it is not returned to the caller. */
  initialActivityId?: string;
}

export interface ConnectorFailure {
  status: number;
  /** Seconds, sent as `Retry-After` (the SDK heeds it on 429 and 503). */
  retryAfter?: number;
  code?: string;
  message?: string;
  operation?: ConnectorOperation;
  conversationId?: string;
}

export interface FakeBotConnector {
  /** The serviceUrl, with a trailing slash as Teams sends it. */
  readonly url: string;
  readonly calls: ConnectorCall[];
  readonly conversations: CreatedConversation[];
  callsTo(operation: ConnectorOperation): ConnectorCall[];
  activity(conversationId: string, id: string): StoredActivity | undefined;
  activitiesIn(conversationId: string): StoredActivity[];
  /** The roster getConversationMembers answers (created conversations start with their `members`). */
  setMembers(conversationId: string, members: Record<string, unknown>[]): void;
  /** The next `times` matching calls answer `failure` instead. */
  failNext(times: number, failure: ConnectorFailure): void;
  stop(): Promise<void>;
}

const DEFAULT_CODES: Record<number, string> = { 400: 'BadArgument', 403: 'Forbidden', 404: 'NotFound', 413: 'MessageSizeTooBig', 429: 'Throttled' };

function route(method: string, path: string): { operation: ConnectorOperation; conversationId?: string; activityId?: string; memberId?: string } {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] !== 'v3' || parts[1] !== 'conversations') return { operation: 'unknown' };
  const [, , conversationId, kind, sub] = parts;
  if (parts.length === 2) return { operation: method === 'POST' ? 'createConversation' : 'unknown' };
  if (kind === 'activities' && parts.length === 4 && method === 'POST') return { operation: 'sendToConversation', conversationId };
  if (kind === 'activities' && parts.length === 5) {
    const op = ({ POST: 'replyToActivity', PUT: 'updateActivity', DELETE: 'deleteActivity' } as const)[method as 'POST'];
    return { operation: op ?? 'unknown', conversationId, activityId: sub };
  }
  if (kind === 'members' && method === 'GET')
    return parts.length === 4 ? { operation: 'getConversationMembers', conversationId } : { operation: 'getConversationMember', conversationId, memberId: sub };
  return { operation: 'unknown', conversationId };
}

export async function startFakeBotConnector(opts: { accessToken: string }): Promise<FakeBotConnector> {
  const calls: ConnectorCall[] = [];
  const conversations: CreatedConversation[] = [];
  const activities = new Map<string, StoredActivity>();
  const members = new Map<string, Record<string, unknown>[]>();
  const failures: (ConnectorFailure & { times: number })[] = [];
  // Teams message ids are epoch milliseconds as strings; these stay unique within one fake.
  const firstId = Date.now();
  let seq = 0;
  const nextActivityId = () => String(firstId + seq++);
  const keyOf = (conversationId: string, id: string) => `${conversationId}\n${id}`;

  const store = (conversationId: string, body: Record<string, unknown>, replyToId?: string): string => {
    const id = nextActivityId();
    const conversation = { ...(body.conversation as object | undefined), id: conversationId };
    const activity = { ...body, id, conversation, ...(replyToId ? { replyToId } : {}) };
    activities.set(keyOf(conversationId, id), { conversationId, id, activity, updates: 0, deleted: false });
    return id;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const method = req.method ?? '';
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        body = raw;
      }
      const { operation, conversationId, activityId, memberId } = route(method, path);
      const auth = String(req.headers.authorization ?? '');
      const token = auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
      const call: ConnectorCall = { operation, method, path, conversationId, activityId, token, body, status: 0, at: Date.now() };
      calls.push(call);
      const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
        call.status = status;
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
        res.end(payload === undefined ? '' : JSON.stringify(payload));
      };
      const fail = (status: number, code: string, message: string, headers?: Record<string, string>) => send(status, { error: { code, message } }, headers);

      if (token !== opts.accessToken) return send(401, { message: 'Authorization has been denied for this request.' });
      const at = failures.findIndex((f) => (!f.operation || f.operation === operation) && (!f.conversationId || f.conversationId === conversationId));
      const failure = failures[at];
      if (failure) {
        if (--failure.times <= 0) failures.splice(at, 1);
        const headers = failure.retryAfter !== undefined ? { 'retry-after': String(failure.retryAfter) } : undefined;
        const code = failure.code ?? DEFAULT_CODES[failure.status] ?? 'ServiceError';
        return fail(failure.status, code, failure.message ?? `Injected ${failure.status} (${code})`, headers);
      }
      const activityBody = (body ?? {}) as Record<string, unknown>;

      switch (operation) {
        case 'createConversation': {
          const parameters = activityBody;
          if (!parameters.bot || !Array.isArray(parameters.members) || parameters.members.length === 0) {
            return fail(400, 'BadArgument', 'Bot and members are required');
          }
          const id = parameters.isGroup ? `19:${crypto.randomBytes(16).toString('hex')}@thread.v2` : `a:1${crypto.randomBytes(24).toString('base64url')}`;
          const created: CreatedConversation = { id, parameters };
          members.set(id, parameters.members as Record<string, unknown>[]);
          if (parameters.activity) created.initialActivityId = store(id, parameters.activity as Record<string, unknown>);
          conversations.push(created);
          return send(201, { id });
        }
        case 'sendToConversation':
          return send(201, { id: store(conversationId!, activityBody) });
        case 'replyToActivity':
          return send(201, { id: store(conversationId!, activityBody, activityId) });
        case 'updateActivity': {
          const stored = activities.get(keyOf(conversationId!, activityId!));
          if (!stored || stored.deleted) return fail(404, 'NotFound', 'Activity not found');
          // An edit replaces the content; where the message sits (its thread) does not move.
          const { replyToId } = stored.activity;
          stored.activity = {
            ...activityBody,
            id: stored.id,
            conversation: { ...(activityBody.conversation as object | undefined), id: conversationId },
            ...(replyToId ? { replyToId } : {}),
          };
          stored.updates++;
          return send(200, { id: stored.id });
        }
        case 'deleteActivity': {
          const stored = activities.get(keyOf(conversationId!, activityId!));
          if (!stored || stored.deleted) return fail(404, 'NotFound', 'Activity not found');
          stored.deleted = true;
          return send(200, undefined);
        }
        case 'getConversationMembers':
          return send(200, members.get(conversationId!) ?? []);
        case 'getConversationMember': {
          const member = (members.get(conversationId!) ?? []).find((m) => m.id === memberId || m.aadObjectId === memberId);
          return member ? send(200, member) : fail(404, 'MemberNotFoundInConversation', 'The member was not found in the conversation.');
        }
        default:
          return fail(404, 'NotFound', `No route for ${method} ${path}`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  return {
    url,
    calls,
    conversations,
    callsTo: (operation) => calls.filter((c) => c.operation === operation),
    activity: (conversationId, id) => activities.get(keyOf(conversationId, id)),
    activitiesIn: (conversationId) => [...activities.values()].filter((a) => a.conversationId === conversationId),
    setMembers: (conversationId, list) => void members.set(conversationId, list),
    failNext: (times, failure) => void failures.push({ ...failure, times }),
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
