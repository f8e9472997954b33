/**
 * The HTTP seam, below every layer that serves a route: what a route is (`Handler`), what a
 * module that brings routes is handed (`HttpRoutes`), and the helpers every route uses: the body
 * (`readBody`, which stops at its limit), JSON answers (`sendJson`, refusals carrying the request id).
 * Tollgate's server (src/server/http.ts) implements `HttpRoutes`; the chat adapters, the console
 * and the metrics route mount through it, so none of them imports the server.
 */
import type http from 'node:http';
import { TollgateError } from './errors.ts';

/** `params`: the `:name` segments of a pattern route (empty for an exact one). */
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, params?: Readonly<Record<string, string>>) => Promise<void> | void;

/** Where a module mounts its routes: `path` is exact, or has `:name` segments (`/console/runs/:id`). */
export interface HttpRoutes {
  mount(method: string, path: string, handler: Handler): void;
}

/** The request id of a response of this server (its `X-Request-Id`), for log lines and refusal bodies. */
export function requestIdOf(res: http.ServerResponse): string | undefined {
  const id = res.getHeader('x-request-id');
  return typeof id === 'string' ? id : undefined;
}

/** Sends JSON; an error body (status 400 and above, an object with an `error`) also carries the request id. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const requestId = requestIdOf(res);
  const refusal = status >= 400 && requestId !== undefined && typeof body === 'object' && body !== null && 'error' in body;
  const sent = refusal ? { ...body, requestId } : body;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(sent));
}

/**
 * The request's body, up to `limit` bytes. Over it (declared or counted), reading stops where it
 * is and TG_HTTP_BODY_TOO_LARGE is thrown: the server answers 413 and, the body being unread, closes
 * the connection (src/server/door.ts). The rest is never read, nor the socket destroyed before the
 * answer is out.
 */
export function readBody(req: http.IncomingMessage, limit = 1_000_000): Promise<Buffer> {
  const tooLarge = () => new TollgateError('TG_HTTP_BODY_TOO_LARGE', `The request body is over ${limit} bytes.`, { limit });
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length']) > limit) return reject(tooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('aborted', onAborted);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      done();
      req.pause();
      reject(tooLarge());
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onError = (e: Error) => {
      done();
      reject(e);
    };
    const onAborted = () => onError(new TollgateError('TG_HTTP_CLIENT_GONE', 'The client closed the connection before its request body was complete.'));
    req.on('data', onData).on('end', onEnd).on('error', onError).on('aborted', onAborted);
  });
}
