/**
 * Built-in tool `http.request`: one HTTP request to a host on the allowlist
 * (`tools["http.request"].allowedHosts`), with a timeout, a response size cap and the call's
 * idempotency key as the `Idempotency-Key` header. Redirects are not followed (a redirect could
 * leave the allowlist). GET, HEAD and OPTIONS are reads; other methods are writes and need an
 * approval.
 *
 * What is checked before a byte is sent, and why:
 * - The allowlist binds scheme, host and port. An entry without a port admits only the scheme's
 *   default port (443), so `api.example.com` does not open every service on that machine.
 * - Only https, unless the entry says `allowInsecure: true` (meant for local test targets).
 * - The host name is resolved here and every address it resolves to is checked: loopback,
 *   link-local (cloud metadata lives at 169.254.169.254), private, unspecified and reserved ranges,
 *   IPv4-mapped IPv6 included, are refused unless the entry says `allowPrivate: true`. The
 *   connection then goes to exactly the addresses that were checked (the socket's `lookup` returns
 *   them), so a DNS answer that changes between check and connect (rebinding) cannot slip through.
 * - Per-host credentials (`tools["http.request"].headers["host[:port]"]`) go only to that host and
 *   port, over https (or over http to an `allowInsecure` entry, which says so explicitly). Input may
 *   not carry credential headers, and the output never contains request headers.
 * - `Idempotency-Key` is ours: any spelling of it in the input is dropped and the call's key set.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { z } from 'zod';
import { NonRetriableError, RetryAfterError, TollgateError } from '../common/errors.ts';
import { projectSection, type ProjectConfig } from '../config/project-config.ts';
import { defineTool, type ToolContext } from './define.ts';
import { traceHttpRequest } from '../telemetry/tracing-spans.ts';

export const HTTP_TOOL = 'http.request';

/** `api.example.com`, `api.example.com:8443`, `*.example.com`, `10.0.0.5:8080`, `[::1]:8080`. */
const HOST_PATTERN = /^(\*\.)?([a-z0-9-]+\.)*[a-z0-9-]+(:\d{1,5})?$|^\[[0-9a-f:.]+\](:\d{1,5})?$/;

const hostPattern = z
  .string()
  .trim()
  .toLowerCase()
  .refine((h) => HOST_PATTERN.test(h), {
    message: 'write a host as host, host:port or *.domain, without a scheme or path (e.g. "api.example.com" or "api.example.com:8443")',
  });

const allowedHost = z.union([
  hostPattern,
  z
    .object({
      host: hostPattern,
      /** Plain http to this entry, and its configured headers with it. For local test targets. */
      allowInsecure: z.boolean().default(false),
      /** Loopback, link-local and private addresses for this entry. For internal or local targets. */
      allowPrivate: z.boolean().default(false),
    })
    .strict(),
]);

export const httpToolConfigSchema = z.object({
  /**
   * Hosts that may be called: `api.example.com` (https, port 443), `api.example.com:8443`,
   * `*.example.com`, or `{ host, allowInsecure?, allowPrivate? }` for the explicit exceptions.
   */
  allowedHosts: z.array(allowedHost).default([]),
  timeoutMs: z.number().int().min(1).default(10_000),
  maxResponseBytes: z.number().int().min(1).default(1_000_000),
  /** Credentials and other headers added per host (key: host, meaning its default port, or host:port). */
  headers: z.record(hostPattern, z.record(z.string(), z.string())).default({}),
});
export type HttpToolConfig = z.infer<typeof httpToolConfigSchema>;

const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'api-key']);
/**
 * Headers the tool sets itself: the idempotency key is the call's own; `host` would let a call
 * reach another virtual host than the allowlist admitted; the framing headers are the client's.
 */
const OWNED_HEADERS = new Set(['idempotency-key', 'host', 'content-length', 'transfer-encoding', 'connection']);

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

// ----- the allowlist -------------------------------------------------------------------------

interface HostRule {
  entry: string;
  /** `api.example.com`, `[::1]`, or `.example.com` for a wildcard. */
  name: string;
  wildcard: boolean;
  /** Null: the scheme's default port. */
  port: number | null;
  allowInsecure: boolean;
  allowPrivate: boolean;
}

function splitHostPort(hostPort: string): { name: string; port: number | null } {
  const m = /^(.*?)(?::(\d{1,5}))?$/.exec(hostPort);
  const name = m?.[1] ?? hostPort;
  return { name, port: m?.[2] ? Number(m[2]) : null };
}

function toRule(entry: z.infer<typeof allowedHost>): HostRule {
  const raw = typeof entry === 'string' ? { host: entry, allowInsecure: false, allowPrivate: false } : entry;
  const host = raw.host.toLowerCase();
  const wildcard = host.startsWith('*.');
  const { name, port } = splitHostPort(wildcard ? host.slice(1) : host);
  const flags = [raw.allowInsecure && 'allowInsecure', raw.allowPrivate && 'allowPrivate'].filter(Boolean);
  return {
    entry: flags.length ? `${host} (${flags.join(', ')})` : host,
    name,
    wildcard,
    port,
    allowInsecure: raw.allowInsecure,
    allowPrivate: raw.allowPrivate,
  };
}

function defaultPort(url: URL): number {
  return url.protocol === 'https:' ? 443 : 80;
}

function portOf(url: URL): number {
  return url.port ? Number(url.port) : defaultPort(url);
}

function ruleMatches(rule: HostRule, url: URL): boolean {
  const hostname = url.hostname.toLowerCase();
  const nameOk = rule.wildcard ? hostname.endsWith(rule.name) && hostname.length > rule.name.length : hostname === rule.name;
  return nameOk && portOf(url) === (rule.port ?? defaultPort(url));
}

/** The allowlist entry that admits this URL's host and port (scheme and addresses are checked after). */
function findRule(url: URL, allowed: readonly z.infer<typeof allowedHost>[]): HostRule | undefined {
  return allowed.map(toRule).find((r) => ruleMatches(r, url));
}

/** Is this URL's host and port on the allowlist? An entry without a port admits the scheme's default port only. */
export function hostAllowed(url: URL, allowed: readonly z.infer<typeof allowedHost>[]): boolean {
  return findRule(url, allowed) !== undefined;
}

/** The configured headers for exactly this host and port (a key without a port means the default port). */
function configuredHeaders(url: URL, headers: HttpToolConfig['headers']): Record<string, string> | undefined {
  const hostname = url.hostname.toLowerCase();
  const port = portOf(url);
  for (const [key, value] of Object.entries(headers)) {
    const { name, port: keyPort } = splitHostPort(key.toLowerCase());
    if (name === hostname && (keyPort ?? defaultPort(url)) === port) return value;
  }
  return undefined;
}

// ----- addresses -----------------------------------------------------------------------------

/** IPv4 ranges that are not public, and why. */
const V4_RANGES: [string, number, string][] = [
  ['0.0.0.0', 8, 'an unspecified ("this network") address'],
  ['10.0.0.0', 8, 'a private address'],
  ['100.64.0.0', 10, 'a shared (carrier-grade NAT) address'],
  ['127.0.0.0', 8, 'a loopback address'],
  ['169.254.0.0', 16, 'a link-local address'],
  ['172.16.0.0', 12, 'a private address'],
  ['192.168.0.0', 16, 'a private address'],
  ['224.0.0.0', 3, 'a multicast or reserved address'],
];

/**
 * IPv6 prefixes whose last 32 bits carry an IPv4 address, which decides: IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d). Listed explicitly:
 * BlockList matches IPv4-mapped addresses against IPv4 rules by itself, but not the other two.
 */
const V4_CARRIERS = ['::ffff:', '::', '64:ff9b::'];

function blockList(add: (list: net.BlockList) => void): net.BlockList {
  const list = new net.BlockList();
  add(list);
  return list;
}

/** Why an address is not public, with the ranges it covers; checked in this order (:: and ::1 before the IPv4-compatible range that holds them). */
const NON_PUBLIC: [string, net.BlockList][] = [
  ['an unspecified address', blockList((l) => l.addAddress('::', 'ipv6'))],
  ['a loopback address', blockList((l) => l.addAddress('::1', 'ipv6'))],
  ...V4_RANGES.map(([base, bits, why]): [string, net.BlockList] => [
    why,
    blockList((l) => {
      l.addSubnet(base, bits, 'ipv4');
      for (const prefix of V4_CARRIERS) l.addSubnet(`${prefix}${base}`, 96 + bits, 'ipv6');
    }),
  ]),
  ['a link-local address', blockList((l) => l.addSubnet('fe80::', 10, 'ipv6'))],
  ['a site-local address', blockList((l) => l.addSubnet('fec0::', 10, 'ipv6'))],
  ['a private (unique local) address', blockList((l) => l.addSubnet('fc00::', 7, 'ipv6'))],
  ['a multicast address', blockList((l) => l.addSubnet('ff00::', 8, 'ipv6'))],
];

/**
 * Why this address must not be called without `allowPrivate` ("a loopback address", …), or null
 * for an ordinary public address.
 */
export function nonPublicAddress(ip: string): string | null {
  const address = ip.replace(/%.*$/, ''); // a zone index (fe80::1%eth0) names an interface, not a place
  const family = net.isIP(address);
  if (family === 0) return 'not an IP address';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  return NON_PUBLIC.find(([, list]) => list.check(address, type))?.[0] ?? null;
}

/** Every address the host resolves to (an IP literal is its own). */
async function resolve(hostname: string): Promise<dns.LookupAddress[]> {
  const bare = hostname.replace(/^\[(.*)\]$/, '$1');
  const family = net.isIP(bare);
  if (family) return [{ address: bare, family }];
  return dns.promises.lookup(bare, { all: true, verbatim: true });
}

/** A socket `lookup` that answers with the addresses already checked, never asking DNS again. */
function pinnedLookup(addresses: dns.LookupAddress[]): net.LookupFunction {
  return (_host: string, opts: dns.LookupOptions, cb: (err: Error | null, address: string | dns.LookupAddress[], family?: number) => void) => {
    if (opts.all) cb(null, addresses);
    else cb(null, addresses[0]!.address, addresses[0]!.family);
  };
}

function refused(message: string, details: Record<string, unknown>): NonRetriableError {
  return new NonRetriableError(message, undefined, 'TG_TOOL_HOST_NOT_ALLOWED', details);
}

// ----- the request ---------------------------------------------------------------------------

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  bytes: Buffer;
}

function send(
  url: URL,
  opts: { method: string; headers: Record<string, string>; body?: string; addresses: dns.LookupAddress[]; signal: AbortSignal; maxBytes: number },
): Promise<Response> {
  return new Promise<Response>((resolvePromise, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    const req = client.request({
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: portOf(url),
      path: `${url.pathname}${url.search}`,
      method: opts.method,
      headers: opts.headers,
      lookup: pinnedLookup(opts.addresses),
      // A connection of its own: a pooled socket would skip this call's address check.
      agent: false,
      signal: opts.signal,
    });
    let settled = false;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      reject(e);
    };
    req.on('error', fail);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let total = 0;
      res.on('data', (chunk: Buffer) => {
        total += chunk.byteLength;
        if (total > opts.maxBytes) {
          fail(
            new NonRetriableError(
              `The response from ${url.origin}${url.pathname} is larger than ${opts.maxBytes} bytes (tools["http.request"].maxResponseBytes); it was not read.`,
              undefined,
              'TG_TOOL_RESPONSE_TOO_LARGE',
              { url: `${url.origin}${url.pathname}`, maxResponseBytes: opts.maxBytes },
            ),
          );
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', fail);
      res.on('end', () => {
        if (settled) return;
        settled = true;
        resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, bytes: Buffer.concat(chunks) });
      });
      res.on('close', () => {
        if (!res.complete) fail(new TollgateError('TG_TOOL_HTTP_UNREACHABLE', 'the response was cut off'));
      });
    });
    req.end(opts.body);
  });
}

/** The allowlist entry admitting `url`, and its addresses, checked: refused with the reason otherwise. */
async function admit(url: URL, cfg: HttpToolConfig): Promise<{ rule: HostRule; addresses: dns.LookupAddress[] }> {
  const rule = findRule(url, cfg.allowedHosts);
  if (!rule) {
    throw refused(
      `http.request refused ${url.host}: it is not on the allowlist (${cfg.allowedHosts.map((e) => toRule(e).entry).join(', ') || 'empty'}). ` +
        'Add it to tools["http.request"].allowedHosts in the TOLLGATE_CONFIG file if it should be called; an entry without a port admits only the default port (443 for https).',
      { host: url.host, port: portOf(url), allowedHosts: cfg.allowedHosts },
    );
  }
  if (url.protocol === 'http:' && !rule.allowInsecure) {
    throw refused(
      `http.request refused http://${url.host}: plain http is not allowed. Use https, or set "allowInsecure": true on its allowedHosts entry (${rule.entry}) if this is a local test target.`,
      { host: url.host },
    );
  }
  let addresses: dns.LookupAddress[];
  try {
    addresses = await resolve(url.hostname);
  } catch (e) {
    throw new TollgateError(
      'TG_TOOL_HTTP_UNREACHABLE',
      `http.request could not resolve ${url.hostname}: ${(e as Error).message}`,
      { host: url.hostname },
      { cause: e },
    );
  }
  if (!rule.allowPrivate) {
    for (const a of addresses) {
      const why = nonPublicAddress(a.address);
      if (why) {
        throw refused(
          `http.request refused ${url.host}: it resolves to ${a.address}, ${why}. Loopback, link-local and private addresses are not called unless its allowedHosts entry (${rule.entry}) sets "allowPrivate": true.`,
          { host: url.host, address: a.address },
        );
      }
    }
  }

  return { rule, addresses };
}

export async function httpRequest(input: HttpInput, ctx: ToolContext): Promise<z.input<typeof httpOutput>> {
  const cfg = httpToolConfigSchema.parse(ctx.config);
  const url = new URL(input.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw refused(`http.request only calls http and https URLs, not ${url.protocol}.`, { url: input.url });
  }
  const { rule, addresses } = await admit(url, cfg);

  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers ?? {})) if (!OWNED_HEADERS.has(k.toLowerCase())) headers[k] = v;
  headers['Idempotency-Key'] = ctx.idempotencyKey;
  // Credentials are bound to scheme, host and port: https only, unless the entry opted into http.
  const secret = configuredHeaders(url, cfg.headers);
  if (secret && (url.protocol === 'https:' || rule.allowInsecure)) Object.assign(headers, secret);
  let body: string | undefined;
  if (input.body !== undefined && input.method !== 'GET' && input.method !== 'HEAD') {
    body = typeof input.body === 'string' ? input.body : JSON.stringify(input.body);
    if (typeof input.body !== 'string' && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
  }
  const timeoutMs = Math.min(input.timeoutMs ?? cfg.timeoutMs, cfg.timeoutMs);
  // One controller for the whole exchange, headers and body, with a timer we hold ourselves:
  // Node 20's AbortSignal.any() keeps only weak references to its sources, so an
  // AbortSignal.timeout() passed to it can be garbage-collected and never fire.
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
  const onStepAbort = () => ac.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onStepAbort, { once: true });
  let res: Response;
  try {
    res = await traceHttpRequest(input.method, url, headers, () =>
      send(url, { method: input.method, headers, body, addresses, signal: ac.signal, maxBytes: cfg.maxResponseBytes }),
    );
  } catch (e) {
    if (ac.signal.aborted && (ac.signal.reason as Error | undefined)?.name === 'TimeoutError') {
      throw new TollgateError(
        'TG_TOOL_HTTP_TIMEOUT',
        `http.request to ${url.host} timed out after ${timeoutMs} ms.`,
        { host: url.host, timeoutMs },
        { cause: e },
      );
    }
    if (e instanceof NonRetriableError) throw e;
    throw new TollgateError('TG_TOOL_HTTP_UNREACHABLE', `http.request to ${url.host} failed: ${(e as Error).message}`, { host: url.host }, { cause: e });
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener('abort', onStepAbort);
  }
  return readAnswer(input, url, res);
}

/** The tool's output from the service's answer; 429 and 5xx are retried, other 4xx fail for good. */
function readAnswer(input: HttpInput, url: URL, res: Response): z.input<typeof httpOutput> {
  const contentType = res.headers['content-type'] ?? null;
  const text = res.bytes.toString('utf8');
  let parsed: unknown = text;
  if (contentType?.includes('json') && text.length > 0) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (res.status === 429 || res.status >= 500) {
    const after = Number(res.headers['retry-after']);
    const msg = `${input.method} ${url.origin}${url.pathname} answered ${res.status}; will retry.`;
    if (res.status === 429 && Number.isFinite(after) && after > 0) throw new RetryAfterError(msg, after * 1000);
    throw new TollgateError('TG_TOOL_HTTP_STATUS', msg, { status: res.status });
  }
  if (res.status >= 400) {
    throw new NonRetriableError(
      `${input.method} ${url.origin}${url.pathname} answered ${res.status}: ${text.slice(0, 200)}`,
      undefined,
      'TG_TOOL_HTTP_STATUS',
      {
        status: res.status,
      },
    );
  }
  return { status: res.status, ok: res.status >= 200 && res.status < 300, contentType, body: parsed, bytes: res.bytes.byteLength };
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
