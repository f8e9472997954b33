/**
 * Tollgate's HTTP server, shared by the Slack and Teams adapters: `GET /healthz` (the process
 * answers), `GET /readyz` (503 with the reason when the database is unreachable or the worker has
 * stopped), `GET /metrics` (Prometheus text). Adapters mount their own routes.
 *
 * A route is an exact `METHOD path`, or a path with `:name` segments (`/console/runs/:id`), each
 * matching one non-empty segment, handed to the handler decoded as `params.name`. Exact routes win.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { pingDatabase } from '../db/queries/health.ts';
import { sendJson, type Handler, type HttpRoutes } from '../common/http.ts';
import { metricsHandler, type MetricsOptions } from './metrics.ts';


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
  close(): Promise<void>;
  readonly server: http.Server;
}

export interface ReadinessChecks {
  pool: pg.Pool;
  /** Present when this process runs a worker. */
  workerRunning?: () => boolean;
  /** Why the worker is not running (e.g. restarting after the database went away), for the reason. */
  workerProblem?: () => string | undefined;
}

export function createHttpServer(opts: { log: Logger; checks: ReadinessChecks; metrics?: MetricsOptions }): HttpServer {
  const routes = new Map<string, Handler>();
  const patterns: PatternRoute[] = [];
  const { log, checks } = opts;

  routes.set('GET /healthz', (_req, res) => sendJson(res, 200, { ok: true }));
  routes.set('GET /readyz', async (_req, res) => {
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

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
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
      .catch((e: unknown) => {
        log.error({ err: e, path }, 'request handler failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else res.end();
      });
  });
  server.keepAliveTimeout = 65_000;

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
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => { t = setTimeout(() => reject(new TollgateError('TG_DB_UNREACHABLE', message)), ms); })]).finally(() =>
    clearTimeout(t),
  );
}
