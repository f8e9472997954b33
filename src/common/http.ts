/**
 * The HTTP seam, below every layer that serves a route: what a route is (`Handler`), what a
 * module that brings routes is handed (`HttpRoutes`), and the two body helpers every route uses.
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

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

/** The request's body, refused with 413 (`status`) past `limit` bytes. */
export async function readBody(req: http.IncomingMessage, limit = 1_000_000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new TollgateError('TG_HTTP_BODY_TOO_LARGE', `request body over ${limit} bytes`, { status: 413 });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
