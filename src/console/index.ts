/**
 * The web console at `/console`, on Tollgate's own HTTP server: runs (filterable), a run's
 * timeline with live updates, pending approvals, the audit chain's status. Read-only, except
 * Retry and Cancel, which go to the runtime with the signed-in principal: the runtime decides, as
 * it does for chat and the CLI (the requester or an operator).
 *
 * Server-rendered HTML (the pages in this folder, from the chat's view models in src/views), no
 * front-end build, usable without JavaScript; the one script swaps a run's timeline as it changes.
 *
 * Every console route goes through `guard`: the Host check of a loopback bind, the token (auth.ts),
 * and for forms that change something, the same-origin check.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type pg from 'pg';
import { listPendingApprovals } from '../approvals/store.ts';
import type { Config } from '../config/config.ts';
import { isTollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { parsePrincipal, type Principal } from '../common/principals.ts';
import type { ProjectConfig } from '../config/project-config.ts';
import type { RunRow, RunStatus } from '../db/queries/runs.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { Handler, HttpServer } from '../server/http.ts';
import { readBody } from '../server/http.ts';
import { toApprovalView } from '../views/approval-view.ts';
import { buildRunView, listRunsFiltered } from '../views/run-view.ts';
import { loadTimelineView, timelineVersion } from '../views/timeline-view.ts';
import { approvalsPage } from './approvals-page.ts';
import { auditPage } from './audit-page.ts';
import { AuditStatus } from './audit-status.ts';
import { ConsoleAuth, clearedSessionCookie, sameOrigin, sessionCookie, type ConsoleViewer } from './auth.ts';
import { checkConsoleBind, isLoopbackHost } from './bind.ts';
import { LiveTimelines } from './live.ts';
import { runPage, runPath, timelineFragment } from './run-page.ts';
import { RUN_STATUSES, runsPage } from './runs-page.ts';
import { signInPage } from './sign-in-page.ts';

export interface ConsoleOptions {
  config: Pick<Config, 'host' | 'console'>;
  project: ProjectConfig;
  runtime: Runtime;
  log: Logger;
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

export interface ConsoleRequest {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  params: Readonly<Record<string, string>>;
  url: URL;
  viewer: ConsoleViewer;
}

export type ConsoleHandler = (c: ConsoleRequest) => Promise<void> | void;

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

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
};

function sendHtml(res: http.ServerResponse, status: number, body: string, nonce?: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; script-src ${nonce ? `'nonce-${nonce}'` : "'none'"}; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    ...SECURITY_HEADERS,
    ...headers,
  });
  res.end(body);
}

function redirect(res: http.ServerResponse, to: string, headers: Record<string, string> = {}): void {
  res.writeHead(303, { location: to, ...SECURITY_HEADERS, ...headers }).end();
}

function sendText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS }).end(`${text}\n`);
}

async function formBody(req: http.IncomingMessage): Promise<URLSearchParams> {
  return new URLSearchParams((await readBody(req, 64_000)).toString('utf8'));
}

const NOTICES: Record<string, string> = {
  retry: 'Retry requested: the run resumes at the step that failed (or, out of dead letter, where its workers were interrupted).',
  cancel: 'Cancellation requested: the run stops at its next step boundary and undoes completed steps that have a compensation.',
};

/** HTTP status for a refusal from the runtime. */
function refusalStatus(code: string): number {
  return code === 'TG_NOT_ALLOWED' ? 403 : code === 'TG_RUN_NOT_FOUND' ? 404 : 409;
}

export function mountConsole(http: HttpServer, opts: ConsoleOptions): ConsoleHandle {
  checkConsoleBind(opts.config);
  const { runtime, log } = opts;
  const pool: pg.Pool = runtime.pool;
  const auth = new ConsoleAuth({
    token: opts.config.console.token,
    users: opts.project.console?.users ?? {},
    operators: opts.project.operators,
    loopbackBind: isLoopbackHost(opts.config.host),
  });
  const live = new LiveTimelines({ pool, log, intervalMs: opts.liveIntervalMs });
  const pageSize = opts.pageSize ?? PAGE_SIZE;
  /** A page of the runs list from `pageSize + 1` rows: the extra one only says that older runs exist. */
  const onePage = (rows: RunRow[]) => ({ runs: rows.slice(0, pageSize).map((r) => buildRunView(r, [])), more: rows.length > pageSize });
  const audit = new AuditStatus(pool, log);

  const guard =
    (method: 'GET' | 'POST', handler: ConsoleHandler, opts2: { open?: boolean } = {}): Handler =>
    async (req, res, params = {}) => {
      if (!auth.hostAllowed(req)) {
        return sendText(res, 403, 'This console answers only requests addressed to this machine (localhost, 127.0.0.1 or [::1]); open it by one of those names.');
      }
      const viewer = auth.identify(req);
      if (method === 'POST' && !sameOrigin(req)) {
        return sendHtml(res, 403, signInPage({ viewer, problem: 'This form was not sent from a page of this console (another site, or a browser that sends no Origin), so it was refused and nothing was changed. Open the console and use its buttons.' }));
      }
      if (!viewer.allowed && !opts2.open) return sendHtml(res, 401, signInPage({ viewer, needed: true }));
      const url = new URL(req.url ?? '/', 'http://console.invalid');
      await handler({ req, res, params, url, viewer });
    };

  const mount = (method: 'GET' | 'POST', path: string, handler: ConsoleHandler, o?: { open?: boolean }) => http.mount(method, path, guard(method, handler, o));
  const evidence = opts.evidence;
  if (evidence) mount('GET', '/console/runs/:id/evidence', (c) => evidence(c.req, c.res, c.params.id as string));

  /** The run page, with a notice or a refusal on top; 404 when there is no such run. */
  const showRun = async (c: ConsoleRequest, runId: string, extra: { status?: number; notice?: string; alert?: string } = {}) => {
    const version = await timelineVersion(pool, runId); // read first: a change after it is sent again, never missed
    const timeline = await loadTimelineView(pool, runId);
    if (!timeline || version === undefined) {
      return sendHtml(c.res, 404, await notFoundPage(c.viewer, `No run with id "${runId}". The newest runs are listed below.`));
    }
    const nonce = randomBytes(16).toString('base64');
    sendHtml(c.res, extra.status ?? 200, runPage({ viewer: c.viewer, timeline, version, nonce, notice: extra.notice, alert: extra.alert }), nonce);
  };

  const notFoundPage = async (viewer: ConsoleViewer, problem: string) => {
    const rows = await listRunsFiltered(pool, { limit: pageSize + 1 });
    const form = { workflow: '', status: '', requester: '', before: '' };
    return runsPage({ viewer, form, workflows: runtime.registry.names(), ...onePage(rows), problems: [problem] });
  };

  http.mount('GET', '/console/', (_req, res) => redirect(res, '/console'));

  mount('GET', '/console', async (c) => {
    const param = (name: string) => (c.url.searchParams.get(name) ?? '').trim();
    const form = { workflow: param('workflow'), status: param('status'), requester: param('requester'), before: param('before') };
    const problems: string[] = [];
    let status: RunStatus | undefined;
    if (form.status) {
      if ((RUN_STATUSES as string[]).includes(form.status)) status = form.status as RunStatus;
      else problems.push(`"${form.status}" is not a run status; pick one of ${RUN_STATUSES.join(', ')}. Showing every status.`);
    }
    let requester: Principal | undefined;
    if (form.requester) {
      try {
        requester = parsePrincipal(form.requester);
      } catch (e) {
        problems.push(`${(e as Error).message} Showing every requester.`);
      }
    }
    const rows = await listRunsFiltered(pool, { workflow: form.workflow || undefined, status, requester, before: form.before || undefined, limit: pageSize + 1 });
    sendHtml(c.res, problems.length ? 400 : 200, runsPage({ viewer: c.viewer, form, workflows: runtime.registry.names(), ...onePage(rows), problems }));
  });

  mount('GET', '/console/runs/:id', async (c) => {
    const done = c.url.searchParams.get('done');
    await showRun(c, c.params.id as string, { notice: done ? NOTICES[done] : undefined });
  });

  mount('GET', '/console/runs/:id/events', async (c) => {
    const runId = c.params.id as string;
    if ((await timelineVersion(pool, runId)) === undefined) return sendText(c.res, 404, `No run with id "${runId}".`);
    const since = (c.req.headers['last-event-id'] as string | undefined) ?? c.url.searchParams.get('since') ?? undefined;
    live.serve(c.req, c.res, runId, since, async () => {
      const t = await loadTimelineView(pool, runId);
      return t ? timelineFragment(t, c.viewer).text : undefined;
    });
  });

  for (const action of ['retry', 'cancel'] as const) {
    mount('POST', `/console/runs/:id/${action}`, async (c) => {
      const runId = c.params.id as string;
      if (!c.viewer.principal) {
        return showRun(c, runId, {
          status: 403,
          alert: `Sign in to ${action} a run: without a signed-in person the console is read-only. Nothing was changed.`,
        });
      }
      try {
        if (action === 'retry') await runtime.retry(runId, c.viewer.principal, { via: 'console' });
        else await runtime.cancel(runId, c.viewer.principal, { via: 'console' });
      } catch (e) {
        if (!isTollgateError(e)) throw e;
        return showRun(c, runId, { status: refusalStatus(e.code), alert: e.message });
      }
      redirect(c.res, `${runPath(runId)}?done=${action}`);
    });
  }

  mount('GET', '/console/approvals', async (c) => {
    const pending = await listPendingApprovals(pool);
    sendHtml(c.res, 200, approvalsPage({ viewer: c.viewer, approvals: pending.map(toApprovalView) }));
  });

  mount('GET', '/console/audit', (c) => sendHtml(c.res, 200, auditPage({ viewer: c.viewer, state: audit.state })));
  mount('POST', '/console/audit/verify', async (c) => {
    await audit.verify();
    redirect(c.res, '/console/audit');
  });

  mount('GET', '/console/sign-in', (c) => sendHtml(c.res, 200, signInPage({ viewer: c.viewer })), { open: true });
  mount(
    'POST',
    '/console/sign-in',
    async (c) => {
      const token = (await formBody(c.req)).get('token')?.trim() ?? '';
      if (!token || !auth.recognise(token)) {
        return sendHtml(c.res, 401, signInPage({ viewer: c.viewer, problem: 'That token is neither TOLLGATE_CONSOLE_TOKEN nor a personal token listed under console.users; check it and try again.' }));
      }
      redirect(c.res, '/console', { 'set-cookie': sessionCookie(token) });
    },
    { open: true },
  );
  mount('POST', '/console/sign-out', (c) => redirect(c.res, '/console', { 'set-cookie': clearedSessionCookie() }), { open: true });

  return { mount, close: () => live.close() };
}
