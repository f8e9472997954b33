/**
 * Tollgate's HTTP server, shared by the Slack and Teams adapters: `GET /healthz` (the process
 * answers), `GET /readyz` (503 with the reason when the database is unreachable or the worker has
 * stopped), `GET /metrics` (Prometheus text). Adapters mount their own routes.
 *
 * A route is an exact `METHOD path`, or a path with `:name` segments (`/console/runs/:id`), each
 * matching one non-empty segment, handed to the handler decoded as `params.name`. Exact routes win.
 *
 * Every response carries an `X-Request-Id` (`req_…`), and every JSON error body (`{ error }`) its `requestId`:
 * a refusal says a fixed sentence, and the detail goes to the log under that id. Timeouts, the
 * connection budget and shutting down are the door's (src/server/door.ts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { TollgateError } from '../common/errors.ts';
import { newId } from '../common/ids.ts';
import type { Logger } from '../common/log.ts';
import { pingDatabase } from '../db/queries/health.ts';
import { sendJson, type Handler, type HttpRoutes } from '../common/http.ts';
import { metricsHandler, type MetricsOptions } from './metrics.ts';
import { DEFAULT_HTTP_LIMITS, guardDoor, serverOptions, type HttpLimits } from './door.ts';

interface PatternRoute {
  method: string;
  segments: string[];
  handler: Handler;
}

/** The `:name` values of `path` if it matches the route's segments; undefined otherwise. */
function matchSegments(segments: readonly string[], path: string): Record<string, string> | undefined {
  const parts = path.split('/');
  if (parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const want = segments[i] as string;
    const got = parts[i] as string;
    if (want.startsWith(':')) {
      if (got === '') return undefined;
      try {
        params[want.slice(1)] = decodeURIComponent(got);
      } catch {
        return undefined; // a malformed escape matches nothing: 404, not 500
      }
    } else if (want !== got) return undefined;
  }
  return params;
}

export interface HttpServer extends HttpRoutes {
  listen(port: number, host: string): Promise<AddressInfo>;
  /**
   * Shuts the door: /readyz answers 503 from now on, new connections are refused, idle ones
   * closed, requests in flight finish (their answers close their connections). Resolves once
   * every connection has ended.
   */
  close(): Promise<void>;
  /** Ends every connection now, mid-request or not (the shutdown deadline). */
  closeAllConnections(): void;
  readonly server: http.Server;
}

export interface ReadinessChecks {
  pool: pg.Pool;
  /** Present when this process runs a worker. */
  workerRunning?: () => boolean;
  /** Why the worker is not running (e.g. restarting after the database went away), for the reason. */
  workerProblem?: () => string | undefined;
}

export function createHttpServer(opts: { log: Logger; checks: ReadinessChecks; metrics?: MetricsOptions; limits?: HttpLimits }): HttpServer {
  const routes = new Map<string, Handler>();
  const patterns: PatternRoute[] = [];
  const { log, checks } = opts;
  const limits = opts.limits ?? DEFAULT_HTTP_LIMITS;
  let shutting = false;

  routes.set('GET /healthz', (_req, res) => sendJson(res, 200, { ok: true }));
  routes.set('GET /readyz', async (_req, res) => {
    // A process shutting down says so at once, so a load balancer stops sending it requests.
    if (shutting) return sendJson(res, 503, { ok: false, reasons: ['shutting down'] });
    const problems: string[] = [];
    try {
      await withTimeout(pingDatabase(checks.pool), 2000, 'database did not answer within 2 s');
    } catch (e) {
      problems.push(`database unreachable: ${(e as Error).message}`);
    }
    if (checks.workerRunning && !checks.workerRunning()) problems.push(checks.workerProblem?.() ?? 'worker stopped');
    if (problems.length) sendJson(res, 503, { ok: false, reasons: problems });
    else sendJson(res, 200, { ok: true });
  });
  routes.set('GET /metrics', metricsHandler(checks.pool, opts.metrics));

  const server = http.createServer(serverOptions(limits), (req, res) => {
    const requestId = newId('req');
    res.setHeader('x-request-id', requestId);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (door.overBudget(req.socket) && !(req.method === 'GET' && door.healthPaths.has(path))) {
      res.setHeader('retry-after', '1');
      sendJson(res, 503, { error: 'Tollgate is serving as many connections as it may; try again shortly.' });
      return;
    }
    let handler = routes.get(`${req.method} ${path}`);
    let params: Record<string, string> = {};
    for (const p of handler ? [] : patterns) {
      const found = p.method === req.method ? matchSegments(p.segments, path) : undefined;
      if (found) {
        handler = p.handler;
        params = found;
        break;
      }
    }
    if (!handler) {
      const allowed = [
        ...[...routes.keys()].filter((k) => k.endsWith(` ${path}`)).map((k) => k.split(' ')[0]),
        ...patterns.filter((p) => matchSegments(p.segments, path)).map((p) => p.method),
      ];
      if (allowed.length) {
        res.writeHead(405, { allow: allowed.join(', ') }).end();
      } else {
        sendJson(res, 404, { error: `No route ${req.method} ${path}.` });
      }
      return;
    }
    Promise.resolve()
      .then(() => handler(req, res, params))
      .catch((e: unknown) => answerFailure(log, res, e, { path, requestId }));
  });
  const door = guardDoor(server, limits);

  return {
    server,
    mount: (method, path, handler) => {
      if (path.split('/').some((s) => s.startsWith(':'))) patterns.push({ method: method.toUpperCase(), segments: path.split('/'), handler });
      else routes.set(`${method.toUpperCase()} ${path}`, handler);
    },
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      }),
    close: () => {
      shutting = true;
      return door.drain();
    },
    closeAllConnections: () => door.closeAll(),
  };
}

/** A route threw: 413 for a body over its limit, 500 otherwise, the detail logged under the request id. */
function answerFailure(log: Logger, res: http.ServerResponse, e: unknown, where: { path: string; requestId: string }): void {
  if (isBodyTooLarge(e)) {
    log.warn({ ...where, err: (e as Error).message }, 'refused a request body over the size limit');
    if (!res.headersSent) sendJson(res, 413, { error: 'The request body is too large.' });
    else res.end();
    return;
  }
  if (res.destroyed) {
    // The client went away (or the door cut it off) mid-request: there is no one to answer.
    log.warn({ ...where, err: (e as Error).message }, 'a request ended before its answer');
    return;
  }
  log.error({ ...where, err: e }, 'request handler failed');
  if (!res.headersSent) sendJson(res, 500, { error: 'Internal error.' });
  else res.end();
}

function isBodyTooLarge(e: unknown): boolean {
  return e instanceof TollgateError && e.code === 'TG_HTTP_BODY_TOO_LARGE';
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new TollgateError('TG_DB_UNREACHABLE', message)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}
