/**
 * Built-in tool `http.request`: one HTTP request to a host on the allowlist
 * (`tools["http.request"].allowedHosts`), with a timeout, a response size cap and the call's
 * idempotency key as the `Idempotency-Key` header. Redirects are not followed (a redirect could
 * leave the allowlist). Per-host credentials come from `tools["http.request"].headers[host]` and
 * are added to the request only; input may not carry credential headers, and the output never
 * contains request headers.
 *
 * GET, HEAD and OPTIONS are reads; other methods are writes and need an approval.
 */
import { z } from 'zod';
import { NonRetriableError, RetryAfterError } from '../errors.ts';
import { projectSection, type ProjectConfig } from '../project-config.ts';
import { defineTool, type ToolContext } from './define.ts';

export const HTTP_TOOL = 'http.request';

export const httpToolConfigSchema = z.object({
  /** Hosts that may be called: `api.example.com`, `api.example.com:8443`, `*.example.com`. */
  allowedHosts: z.array(z.string().min(1)).default([]),
  timeoutMs: z.number().int().min(1).default(10_000),
  maxResponseBytes: z.number().int().min(1).default(1_000_000),
  /** Credentials and other headers added per host (key: host or host:port). */
  headers: z.record(z.string(), z.record(z.string(), z.string())).default({}),
});
export type HttpToolConfig = z.infer<typeof httpToolConfigSchema>;

const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'api-key']);

export const httpInput = z.object({
  method: z.enum(['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE']).default('GET'),
  url: z.string().url(),
  headers: z
    .record(z.string(), z.string())
    .optional()
    .refine((h) => !h || Object.keys(h).every((k) => !CREDENTIAL_HEADERS.has(k.toLowerCase())), {
      message: 'credential headers (Authorization, Cookie, API keys) may not be part of a call; configure them under tools["http.request"].headers',
    }),
  body: z.unknown().optional(),
  timeoutMs: z.number().int().min(1).optional(),
});
export type HttpInput = z.infer<typeof httpInput>;

export const httpOutput = z.object({
  status: z.number().int(),
  ok: z.boolean(),
  contentType: z.string().nullable(),
  body: z.unknown(),
  bytes: z.number().int(),
});

export function hostAllowed(url: URL, allowed: readonly string[]): boolean {
  const host = url.host.toLowerCase();
  const hostname = url.hostname.toLowerCase();
  return allowed.some((raw) => {
    const a = raw.toLowerCase();
    if (a.startsWith('*.')) return hostname.endsWith(a.slice(1)) && hostname !== a.slice(2);
    return a === host || a === hostname;
  });
}

async function readCapped(res: Response, max: number, url: string): Promise<Uint8Array> {
  const reader = res.body?.getReader();
  if (!reader) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw new NonRetriableError(
        `The response from ${url} is larger than ${max} bytes (tools["http.request"].maxResponseBytes); it was not read.`,
        undefined,
        'TG_TOOL_RESPONSE_TOO_LARGE',
        { url, maxResponseBytes: max },
      );
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

export async function httpRequest(input: HttpInput, ctx: ToolContext): Promise<z.input<typeof httpOutput>> {
  const cfg = httpToolConfigSchema.parse(ctx.config);
  const url = new URL(input.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new NonRetriableError(`http.request only calls http and https URLs, not ${url.protocol}.`, undefined, 'TG_TOOL_HOST_NOT_ALLOWED', { url: input.url });
  }
  if (!hostAllowed(url, cfg.allowedHosts)) {
    throw new NonRetriableError(
      `http.request refused ${url.host}: it is not on the allowlist (${cfg.allowedHosts.join(', ') || 'empty'}). ` +
        'Add it to tools["http.request"].allowedHosts in the TOLLGATE_CONFIG file if it should be called.',
      undefined,
      'TG_TOOL_HOST_NOT_ALLOWED',
      { host: url.host, allowedHosts: cfg.allowedHosts },
    );
  }
  const headers: Record<string, string> = { ...(input.headers ?? {}), 'Idempotency-Key': ctx.idempotencyKey };
  const secret = cfg.headers[url.host] ?? cfg.headers[url.hostname];
  if (secret) Object.assign(headers, secret);
  let body: string | undefined;
  if (input.body !== undefined && input.method !== 'GET' && input.method !== 'HEAD') {
    body = typeof input.body === 'string' ? input.body : JSON.stringify(input.body);
    if (typeof input.body !== 'string' && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
  }
  const timeoutMs = Math.min(input.timeoutMs ?? cfg.timeoutMs, cfg.timeoutMs);
  // One controller for the whole exchange, headers and body, with a timer we hold ourselves:
  // Node 20's AbortSignal.any() keeps only weak references to its sources, so an
  // AbortSignal.timeout() passed to it can be garbage-collected and never fire (seen here: a
  // 3 s response accepted under a 500 ms timeout).
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
  const onStepAbort = () => ac.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onStepAbort, { once: true });
  let res: Response;
  let bytes: Uint8Array;
  try {
    res = await fetch(url, { method: input.method, headers, body, redirect: 'manual', signal: ac.signal });
    bytes = await readCapped(res, cfg.maxResponseBytes, `${url.origin}${url.pathname}`);
  } catch (e) {
    if (ac.signal.aborted && (ac.signal.reason as Error | undefined)?.name === 'TimeoutError') {
      throw new Error(`http.request to ${url.host} timed out after ${timeoutMs} ms.`, { cause: e });
    }
    if (e instanceof NonRetriableError) throw e;
    throw new Error(`http.request to ${url.host} failed: ${(e as Error).message}`, { cause: e });
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener('abort', onStepAbort);
  }
  const contentType = res.headers.get('content-type');
  const text = new TextDecoder().decode(bytes);
  let parsed: unknown = text;
  if (contentType?.includes('json') && text.length > 0) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (res.status === 429 || res.status >= 500) {
    const after = Number(res.headers.get('retry-after'));
    const msg = `${input.method} ${url.origin}${url.pathname} answered ${res.status}; will retry.`;
    if (res.status === 429 && Number.isFinite(after) && after > 0) throw new RetryAfterError(msg, after * 1000);
    throw new Error(msg);
  }
  if (res.status >= 400) {
    throw new NonRetriableError(`${input.method} ${url.origin}${url.pathname} answered ${res.status}: ${text.slice(0, 200)}`, undefined, 'TG_TOOL_HTTP_STATUS', {
      status: res.status,
    });
  }
  return { status: res.status, ok: res.ok, contentType, body: parsed, bytes: bytes.byteLength };
}

export const httpRequestTool = defineTool({
  name: HTTP_TOOL,
  version: 1,
  description: 'One HTTP request to an allowlisted host (timeout, size cap, Idempotency-Key).',
  input: httpInput,
  output: httpOutput,
  effect: 'write',
  effectOf: (input) => (input.method === 'GET' || input.method === 'HEAD' || input.method === 'OPTIONS' ? 'read' : 'write'),
  handler: httpRequest,
});

/** Checks the tool's configuration at start-up, so a typo stops the process with the field's path. */
export function checkHttpToolConfig(project: ProjectConfig): HttpToolConfig {
  return projectSection(project, 'tools', HTTP_TOOL, httpToolConfigSchema);
}
