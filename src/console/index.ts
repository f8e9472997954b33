/**
 * The web console at `/console`, on Tollgate's own HTTP server: runs (filterable), a run's
 * timeline with live updates, pending approvals, the audit chain's status, and a signed-in
 * person's "My approvals" and "My runs". Read-only, except Retry and Cancel, which go to the
 * runtime with the signed-in principal (the runtime decides, as it does for chat and the CLI: the
 * requester or an operator), and Approve and Reject, which go through the chat layer's
 * `submit(intent)` like a click (decide-routes.ts).
 *
 * Server-rendered HTML (the pages in this folder, from the chat's view models in src/views), no
 * front-end build, usable without JavaScript; the one script swaps a run's timeline as it changes.
 *
 * Every console route goes through `guarded` (guard.ts): the Host check of a loopback bind, the
 * token (auth.ts), and for forms that change something, the same-origin check. The run routes are
 * in run-routes.ts, signing in and out in sign-in-routes.ts.
 */
import type http from 'node:http';
import type pg from 'pg';
import type { Config } from '../config/config.ts';
import type { Logger } from '../common/log.ts';
import type { ProjectConfig } from '../config/project-config.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { HttpServer } from '../server/http.ts';
import { auditPage } from './audit-page.ts';
import { AuditStatus } from './audit-status.ts';
import { ConsoleAuth } from './auth.ts';
import { isLoopbackHost } from '../common/loopback.ts';
import { checkConsoleBind } from './bind.ts';
import { mountDecideRoutes } from './decide-routes.ts';
import { guarded } from './guard.ts';
import { LiveTimelines } from './live.ts';
import { redirect, sendHtml, type ConsoleHandler, type ConsoleMount } from './routing.ts';
import { mountRunRoutes } from './run-routes.ts';
import { OidcSignIn } from './oidc.ts';
import { ConsoleSessions } from './sessions.ts';
import { mountSignInRoutes } from './sign-in-routes.ts';
import { resolveOidcSettings } from '../config/oidc.ts';
import { createChat, type ChatCore } from '../chat/index.ts';

export type { ConsoleHandler, ConsoleRequest } from './routing.ts';

export interface ConsoleOptions {
  /** `console.token` is required; the rest (public URL, OpenID Connect, session lifetimes) has defaults for tests. */
  config: Pick<Config, 'host'> & { console: Pick<Config['console'], 'token'> & Partial<Config['console']> };
  project: ProjectConfig;
  runtime: Runtime;
  log: Logger;
  /**
   * The chat layer (`ChatCore`): decisions, Edit and retry and Resolve by hand made in the console
   * go through it like a click (decide-routes.ts, amend-routes.ts). Without it the console cannot
   * decide, and makes its own over no platform for Edit and Resolve.
   */
  chat?: ChatCore;
  /** How often an open run page's stream looks for changes (default 500 ms). */
  liveIntervalMs?: number;
  /** Runs per page of the runs list (default 100); "Older runs" shows the next. */
  pageSize?: number;
  /**
   * The run page's "Export evidence" download (src/audit/bundle-http.ts), mounted at
   * `GET /console/runs/:id/evidence` behind this console's guard. Without it the link answers 404.
   */
  evidence?: (req: http.IncomingMessage, res: http.ServerResponse, runId: string) => Promise<void>;
}

export interface ConsoleHandle {
  /**
   * Mounts another route under /console behind the console's own checks (Host, token; for POST,
   * same origin), e.g. `GET /console/runs/:id/evidence`.
   */
  mount(method: 'GET' | 'POST', path: string, handler: ConsoleHandler): void;
  /** Ends the live streams, so the HTTP server can close. */
  close(): void;
}

const PAGE_SIZE = 100;

/**
 * The OpenID Connect sign-in and its sessions, when `console.oidc` or TOLLGATE_OIDC_* name an
 * issuer (src/config/oidc.ts; a half-configured one stops start-up, naming what is missing).
 */
function signInThroughOidc(opts: ConsoleOptions, pool: pg.Pool): { signIn: OidcSignIn; sessions: ConsoleSessions } | undefined {
  const c = opts.config.console;
  const settings = resolveOidcSettings(c.oidc ?? { issuer: undefined, clientId: undefined, clientSecret: undefined }, opts.project.console?.oidc);
  if (!settings) return undefined;
  const publicUrl = c.publicUrl ?? `http://${opts.config.host}`;
  const sessions = new ConsoleSessions({
    pool,
    limits: { idleMs: c.sessionIdleMs ?? 8 * 3_600_000, maxMs: c.sessionMaxMs ?? 7 * 24 * 3_600_000 },
    secure: publicUrl.startsWith('https:'),
  });
  const signIn = new OidcSignIn({ settings, pool, log: opts.log, tenants: opts.project.tenants ?? [], publicUrl });
  opts.log.info({ issuer: settings.issuer, redirectUri: signIn.redirectUri }, 'console sign-in through OpenID Connect');
  return { signIn, sessions };
}

export function mountConsole(http: HttpServer, opts: ConsoleOptions): ConsoleHandle {
  checkConsoleBind(opts.config);
  const { runtime, log } = opts;
  const pool: pg.Pool = runtime.pool;
  const oidc = signInThroughOidc(opts, pool);
  const auth = new ConsoleAuth({
    token: opts.config.console.token,
    users: opts.project.console?.users ?? {},
    operators: opts.project.operators,
    loopbackBind: isLoopbackHost(opts.config.host),
    sessions: oidc?.sessions,
    provider: oidc?.signIn.provider,
  });
  const live = new LiveTimelines({ pool, log, intervalMs: opts.liveIntervalMs });
  const audit = new AuditStatus(pool, log);

  const mount: ConsoleMount = (method, path, handler, o) => http.mount(method, path, guarded(auth, method, handler, o));
  const evidence = opts.evidence;
  if (evidence) mount('GET', '/console/runs/:id/evidence', (c) => evidence(c.req, c.res, c.params.id as string));

  http.mount('GET', '/console/', (_req, res) => redirect(res, '/console'));
  const chat = opts.chat ?? createChat({ pool, runtime, registry: runtime.registry, log, platforms: [] }).core;
  mountRunRoutes({ runtime, pool, live, pageSize: opts.pageSize ?? PAGE_SIZE, mount, chat });

  // Pending approvals, My approvals and My runs, and deciding through the chat layer (decide-routes.ts).
  mountDecideRoutes({ pool, live, chat: opts.chat, pageSize: opts.pageSize ?? PAGE_SIZE, mount });

  mount('GET', '/console/audit', (c) => sendHtml(c.res, 200, auditPage({ viewer: c.viewer, state: audit.state })));
  mount('POST', '/console/audit/verify', async (c) => {
    await audit.verify();
    redirect(c.res, '/console/audit');
  });

  mountSignInRoutes(mount, auth, oidc, opts.chat?.rememberName ? (p, n, src) => opts.chat?.rememberName?.(p, n, src) ?? Promise.resolve() : undefined);

  return { mount, close: () => live.close() };
}
