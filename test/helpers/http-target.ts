/**
 * A real HTTP server on 127.0.0.1 standing in for an external service a tool calls (a deploy
 * webhook, a version endpoint, a vendor). It records every request and answers with `handler`.
 * Plain http on loopback: configure it for http.request with `allowEntry`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface HttpTarget {
  readonly host: string;
  readonly url: string;
  /**
   * Its `tools["http.request"].allowedHosts` entry: a plain-http server on loopback is reachable
   * only through the explicit exemptions (allowInsecure, allowPrivate).
   */
  readonly allowEntry: { host: string; allowInsecure: true; allowPrivate: true };
  readonly requests: SeenRequest[];
  handler: (req: SeenRequest) => { status?: number; json?: unknown; text?: string; headers?: Record<string, string>; delayMs?: number };
  close(): Promise<void>;
}

export async function startHttpTarget(handler: HttpTarget['handler'] = () => ({ status: 200, json: {} })): Promise<HttpTarget> {
  const requests: SeenRequest[] = [];
  const target = { requests, handler } as HttpTarget;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(seen);
      const out = target.handler(seen);
      const body = out.json !== undefined ? JSON.stringify(out.json) : (out.text ?? '');
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(out.status ?? 200, { 'content-type': out.json !== undefined ? 'application/json' : 'text/plain', ...(out.headers ?? {}) });
        res.end(body);
      };
      if (out.delayMs) setTimeout(send, out.delayMs).unref();
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  Object.assign(target, {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    allowEntry: { host: `127.0.0.1:${port}`, allowInsecure: true, allowPrivate: true },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
  return target;
}
