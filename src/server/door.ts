/**
 * The HTTP server's door: how long a client may take, how many may be inside, what a refused
 * request's connection becomes, and how the door shuts. src/server/http.ts routes; this decides
 * who gets to a route at all. It never reads a body and knows no route but the two health checks.
 *
 * - Timeouts (HttpLimits): a request's headers must arrive within `headersTimeoutMs` and the whole
 *   request within `requestTimeoutMs` (Node answers 408 and closes); an idle keep-alive connection
 *   is closed after `keepAliveTimeoutMs`. Node checks the first two only every
 *   `connectionsCheckingInterval` (30 s by default), so the check runs every second here, or a
 *   slow client would hold its socket up to 30 s past its timeout.
 * - A connection budget: `maxConnections` connections are served. The next HEALTH_RESERVE are let in
 *   for the health checks only (/healthz, /readyz; anything else gets 503 at once), each for at
 *   most RESERVE_WAIT_MS before its request line arrives, so an orchestrator's probe still gets an
 *   answer while a flood holds the budget. Beyond that, Node drops new connections at accept.
 * - A response sent before its request's body was all read (a 413, 401 or 400 to a body still
 *   arriving) says `Connection: close`, so Node closes the socket once the answer is flushed
 *   instead of keeping a half-read connection open until the keep-alive timeout.
 * - Shutting the door (`drain`): stop listening (new connections are refused), close idle
 *   keep-alive connections (again as others become idle), and answer every further request with
 *   `Connection: close`.
 */
import http from 'node:http';
import type net from 'node:net';
import type { HttpLimits } from '../config/config.ts';

export type { HttpLimits } from '../config/config.ts';

/**
 * Chat platforms send small requests in one go (Slack waits 3 s for the answer), so 5 s for the
 * headers and 10 s for a whole request are generous for them and short for a slow client. A load
 * balancer must close an idle connection before the server does, or it may send a request on a
 * socket the server is closing (a 502): 65 s is 5 s above the common 60 s default (AWS ALB,
 * nginx's upstream keep-alive).
 */
export const DEFAULT_HTTP_LIMITS: HttpLimits = { headersTimeoutMs: 5000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 65_000, maxConnections: 1000 };

/** Connections beyond the budget let in for a health check. */
export const HEALTH_RESERVE = 16;
/** How long a connection let in for a health check may take to send its request. */
export const RESERVE_WAIT_MS = 1000;
const HEALTH_PATHS = new Set(['/healthz', '/readyz']);

/** How often a shutting door closes the connections that have become idle since it began to shut. */
const DRAIN_SWEEP_MS = 100;

/** Servers whose door is shutting (their responses close their connections). */
const shutting = new WeakSet<http.Server>();
/** Connections let in over the budget: one answer each, then closed. */
const overBudget = new WeakSet<net.Socket>();

/**
 * Every response of the server: `Connection: close` when its request's body has not all been read,
 * the door is shutting, or the connection was let in over the budget. Set in writeHead, which
 * every way of answering goes through (res.end() without it calls it too).
 */
export class DoorResponse extends http.ServerResponse<http.IncomingMessage> {
  override writeHead(statusCode: number, ...rest: unknown[]): this {
    const socket = this.req.socket as (net.Socket & { server?: net.Server }) | null;
    const server = socket?.server as http.Server | undefined;
    const unread = !this.req.complete;
    const close = unread || (server !== undefined && shutting.has(server)) || (socket !== null && overBudget.has(socket));
    if (close && !this.headersSent) this.setHeader('connection', 'close');
    if (unread && socket) lingerOnClose(socket);
    return (super.writeHead as (code: number, ...more: unknown[]) => this)(statusCode, ...rest);
  }
}

/** How long a connection refused mid-body may go on sending (and be ignored) after its answer, at most. */
const LINGER_MS = 500;

/**
 * A lingering close for an answer sent while the body still arrives (a 413 to 5 MB). Node closes
 * such a socket with `destroySoon()` once the answer is flushed; closing a socket whose client is
 * still sending makes the kernel answer with a reset, which may reach the client before it read
 * the answer and discard it (seen on a busy machine: the client never got its 413). Instead the
 * write side is ended (a FIN after the answer), what the client still sends is read and dropped
 * (the request is already being dumped), and the socket is destroyed when the client ends its side or
 * after LINGER_MS, whichever comes first.
 */
function lingerOnClose(socket: net.Socket): void {
  socket.destroySoon = function lingeringClose(this: net.Socket) {
    this.end();
    this.resume(); // keep reading what still arrives (dropped by the parser, or here once it is gone)
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
    // The server's sockets allow half-open connections: the client's FIN alone would not close it.
    this.once('end', () => this.destroy());
  };
}

export interface Door {
  /** True for a connection let in over the budget, which may ask for a health check only. */
  overBudget(socket: net.Socket): boolean;
  readonly healthPaths: ReadonlySet<string>;
  /** Open connections now. */
  open(): number;
  /** Stops listening and closes idle connections; resolves once every connection has ended. */
  drain(): Promise<void>;
  /** Closes every connection now, in the middle of a request or not (the shutdown deadline). */
  closeAll(): void;
}

/** Node's server options for `limits` (timeouts are checked every second). */
export function serverOptions(limits: HttpLimits): http.ServerOptions {
  return {
    ServerResponse: DoorResponse as unknown as typeof http.ServerResponse,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
  };
}

/** Puts the budget on `server` (created with serverOptions(limits)). */
export function guardDoor(server: http.Server, limits: HttpLimits): Door {
  let open = 0;
  server.maxConnections = limits.maxConnections + HEALTH_RESERVE;
  server.on('connection', (socket: net.Socket) => {
    open++;
    socket.once('close', () => open--);
    if (open <= limits.maxConnections) return;
    overBudget.add(socket);
    // A probe sends its request at once; a flood's idle socket must not keep the reserve.
    const timer = setTimeout(() => socket.destroy(), RESERVE_WAIT_MS);
    timer.unref();
    socket.once('data', () => clearTimeout(timer));
    socket.once('close', () => clearTimeout(timer));
  });
  let drained: Promise<void> | undefined;
  return {
    overBudget: (socket) => overBudget.has(socket),
    healthPaths: HEALTH_PATHS,
    open: () => open,
    drain: () =>
      (drained ??= new Promise<void>((resolve) => {
        shutting.add(server);
        if (!server.listening) return resolve();
        // A response that was under way when the door began to shut (its headers already said
        // keep-alive) leaves its connection idle only once it ends; closing idle connections once
        // would miss it, and the client could send a new request on it. So they are closed again
        // every DRAIN_SWEEP_MS until the last connection has gone.
        const sweep = setInterval(() => server.closeIdleConnections(), DRAIN_SWEEP_MS);
        server.close(() => {
          clearInterval(sweep);
          resolve();
        });
        server.closeIdleConnections();
      })),
    closeAll: () => server.closeAllConnections(),
  };
}
