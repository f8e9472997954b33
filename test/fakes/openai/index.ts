/**
 * A local fake of an OpenAI-compatible chat completions server, for the unmodified `openai`
 * client (point it here with `baseURL: fake.url`, which includes `/v1`).
 *
 * - One endpoint: `POST /v1/chat/completions`. Anything else answers 404 with an OpenAI-style
 *   error body.
 * - Every request is recorded (`requests`: path, headers, parsed body and the raw text, so a
 *   test can check that a secret never left the machine).
 * - Answers come from a script (`script(...replies)`, one per request, in order), then from
 *   `respond(fn)`. With neither, it answers 500 "no scripted reply", so a test that forgot to
 *   script fails loudly instead of hanging.
 * - A reply is `{ json }` (the assistant's content is `JSON.stringify(json)`, as a structured
 *   output answer), `{ text }`, `{ toolCalls }`, `{ status, retryAfter?, body? }` (an error,
 *   `retryAfter` in seconds sent as `Retry-After`), or `{ hang: true }` (never answers, until
 *   `close()`).
 * - Answers are shaped exactly as OpenAI's `chat.completion` (the request's model echoed, usage
 *   with total_tokens). Without a given `usage`, tokens are estimated as characters / 4.
 * - Streaming (`stream: true`): server-sent `data:` chunks (`chat.completion.chunk`) with the
 *   content or tool-call deltas, then, when `stream_options.include_usage`, a last chunk with the
 *   usage and empty `choices`, then `data: [DONE]`.
 */
import http from 'node:http';
import type { ChatCompletionCreateParams } from 'openai/resources/chat/completions';
import type { AddressInfo } from 'node:net';

export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

export type FakeReply =
  | { json: unknown; usage?: FakeUsage }
  | { text: string; usage?: FakeUsage }
  | { toolCalls: { name: string; arguments: unknown }[]; usage?: FakeUsage }
  | { status: number; retryAfter?: number; body?: unknown }
  | { hang: true };

export interface RecordedRequest {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body (undefined when it is not JSON), typed as the client's request. */
  body: ChatCompletionCreateParams | undefined;
  /** Raw text of the body. */
  raw: string;
}

export interface FakeOpenAI {
  /** `http://127.0.0.1:<port>/v1` */
  url: string;
  requests: RecordedRequest[];
  /** Answers the next requests, in order. */
  script(...replies: FakeReply[]): void;
  /** Answers when the script is empty. */
  respond(fn: (body: ChatCompletionCreateParams, req: RecordedRequest) => FakeReply): void;
  /** Clears the script, the handler and the recorded requests. */
  reset(): void;
  close(): Promise<void>;
}

const errorBody = (message: string, type = 'server_error') => ({ error: { message, type, param: null, code: null } });

/** A rough token count, as the fake has no tokenizer: ~4 characters a token. */
const tokens = (s: string) => Math.max(1, Math.ceil(s.length / 4));

let counter = 0;
const nextId = (prefix: string) => `${prefix}-fake${Date.now().toString(36)}${(++counter).toString(36)}`;

export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  const requests: RecordedRequest[] = [];
  let queue: FakeReply[] = [];
  let handler: ((body: ChatCompletionCreateParams, req: RecordedRequest) => FakeReply) | undefined;
  const hanging = new Set<http.ServerResponse>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: ChatCompletionCreateParams | undefined;
      try {
        body = raw ? (JSON.parse(raw) as ChatCompletionCreateParams) : undefined;
      } catch {
        body = undefined;
      }
      const recorded: RecordedRequest = { path: req.url ?? '', headers: { ...req.headers }, body, raw };
      requests.push(recorded);
      if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== '/v1/chat/completions') {
        return sendJson(res, 404, errorBody(`Unknown request URL: ${req.method} ${req.url}`, 'invalid_request_error'));
      }
      if (body === undefined) return sendJson(res, 400, errorBody('The body is not JSON.', 'invalid_request_error'));
      const reply = queue.shift() ?? handler?.(body, recorded);
      if (!reply) return sendJson(res, 500, errorBody('The fake OpenAI server has no scripted reply for this request.'));
      answer(res, body, reply);
    });
  });

  function answer(res: http.ServerResponse, body: ChatCompletionCreateParams, reply: FakeReply): void {
    if ('hang' in reply) {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    if ('status' in reply) {
      const headers: Record<string, string> = reply.retryAfter !== undefined ? { 'retry-after': String(reply.retryAfter) } : {};
      return sendJson(
        res,
        reply.status,
        reply.body ?? errorBody(`Fake error ${reply.status}.`, reply.status === 429 ? 'rate_limit_exceeded' : 'server_error'),
        headers,
      );
    }
    const model = typeof body.model === 'string' ? body.model : 'fake-model';
    const content = 'json' in reply ? JSON.stringify(reply.json) : 'text' in reply ? reply.text : null;
    const toolCalls =
      'toolCalls' in reply
        ? reply.toolCalls.map((c) => ({
            id: nextId('call'),
            type: 'function' as const,
            function: { name: c.name, arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments) },
          }))
        : undefined;
    const prompt = reply.usage?.prompt_tokens ?? tokens(JSON.stringify(body.messages ?? ''));
    const completion = reply.usage?.completion_tokens ?? tokens(content ?? JSON.stringify(toolCalls ?? ''));
    const usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
    const finishReason = toolCalls ? 'tool_calls' : 'stop';
    const id = nextId('chatcmpl');
    const created = Math.floor(Date.now() / 1000);

    if (body.stream === true)
      return stream(res, { id, created, model, content, toolCalls, finishReason, usage: body.stream_options?.include_usage ? usage : undefined });
    sendJson(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content, refusal: null, ...(toolCalls ? { tool_calls: toolCalls } : {}) },
          logprobs: null,
          finish_reason: finishReason,
        },
      ],
      usage,
      system_fingerprint: 'fp_fake',
    });
  }

  function stream(
    res: http.ServerResponse,
    o: {
      id: string;
      created: number;
      model: string;
      content: string | null;
      toolCalls: { id: string; type: 'function'; function: { name: string; arguments: string } }[] | undefined;
      finishReason: string;
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | undefined;
    },
  ): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    // With include_usage, OpenAI sends `usage: null` on every chunk but the last.
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      res.write(
        `data: ${JSON.stringify({ id: o.id, object: 'chat.completion.chunk', created: o.created, model: o.model, choices, ...(o.usage ? { usage: null } : {}), ...extra })}\n\n`,
      );
    const delta = (d: Record<string, unknown>, finish: string | null = null) => chunk([{ index: 0, delta: d, logprobs: null, finish_reason: finish }]);
    delta({ role: 'assistant', content: o.toolCalls ? null : '', refusal: null });
    if (o.toolCalls) {
      o.toolCalls.forEach((c, index) => {
        delta({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.function.name, arguments: '' } }] });
        for (const piece of pieces(c.function.arguments)) delta({ tool_calls: [{ index, function: { arguments: piece } }] });
      });
    } else {
      for (const piece of pieces(o.content ?? '')) delta({ content: piece });
    }
    delta({}, o.finishReason);
    if (o.usage) chunk([], { usage: o.usage });
    res.end('data: [DONE]\n\n');
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    script: (...replies) => void queue.push(...replies),
    respond: (fn) => void (handler = fn),
    reset: () => {
      queue = [];
      handler = undefined;
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Splits a streamed text into a few deltas, as a real server sends it. */
function pieces(s: string): string[] {
  if (s.length === 0) return [];
  const size = Math.max(1, Math.ceil(s.length / 4));
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}
