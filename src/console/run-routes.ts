/**
 * The console's run routes: the runs list (filterable, a page at a time), a run's page, its live
 * timeline stream, and Retry and Cancel, which go to the runtime with the signed-in principal:
 * the runtime decides, as it does for chat and the CLI (the requester or an operator).
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { isTollgateError } from '../common/errors.ts';
import { parsePrincipal, type Principal } from '../common/principals.ts';
import type { RunRow, RunStatus } from '../db/queries/runs.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { buildRunView } from '../views/run-view.ts';
import { listRunsFiltered } from '../db/queries/run-views.ts';
import { loadTimelineView, timelineVersion } from '../views/timeline-view.ts';
import type { ConsoleViewer } from './auth.ts';
import type { LiveTimelines } from './live.ts';
import { nameRuns, nameTimeline } from './people.ts';
import { runPage, runPath, timelineFragment } from './run-page.ts';
import { redirect, sendHtml, sendText, type ConsoleMount, type ConsoleRequest } from './routing.ts';
import { RUN_STATUSES, runsPage } from './runs-page.ts';
import { mountAmendRoutes } from './amend-routes.ts';
import type { ChatCore } from '../chat/intake.ts';

export interface RunRoutes {
  runtime: Runtime;
  pool: pg.Pool;
  live: LiveTimelines;
  /** Runs per page of the runs list; "Older runs" shows the next. */
  pageSize: number;
  mount: ConsoleMount;
  /** Edit and retry, Resolve by hand (amend-routes.ts), through the chat layer. */
  chat?: ChatCore;
}

const NOTICES: Record<string, string> = {
  retry: 'Retry requested: the run resumes at the step that failed (or, out of dead letter, where its workers were interrupted).',
  cancel: 'Cancellation requested: the run stops at its next step boundary and undoes completed steps that have a compensation.',
  edit: 'Edited and retried: the run continues with the corrected input, as the confirmation said.',
  resolve: 'Resolution recorded with your name and reason.',
};

/** HTTP status for a refusal from the runtime. */
function refusalStatus(code: string): number {
  return code === 'TG_NOT_ALLOWED' ? 403 : code === 'TG_RUN_NOT_FOUND' ? 404 : 409;
}

export function mountRunRoutes(r: RunRoutes): void {
  const { runtime, pool, live, pageSize, mount } = r;
  /** A page of the runs list from `pageSize + 1` rows: the extra one only says that older runs exist. */
  const onePage = async (rows: RunRow[]) => ({
    runs: await nameRuns(
      pool,
      rows.slice(0, pageSize).map((row) => buildRunView(row, [])),
    ),
    more: rows.length > pageSize,
  });
  /** The run's timeline with people named (people.ts). */
  const loadTimeline = async (runId: string) => {
    const t = await loadTimelineView(pool, runId);
    return t && nameTimeline(pool, t);
  };

  /** The run page, with a notice or a refusal on top; 404 when there is no such run. */
  const showRun = async (c: ConsoleRequest, runId: string, extra: { status?: number; notice?: string; alert?: string } = {}) => {
    const version = await timelineVersion(pool, runId); // read first: a change after it is sent again, never missed
    const timeline = await loadTimeline(runId);
    if (!timeline || version === undefined) {
      return sendHtml(c.res, 404, await notFoundPage(c.viewer, `No run with id "${runId}". The newest runs are listed below.`));
    }
    const nonce = randomBytes(16).toString('base64');
    sendHtml(c.res, extra.status ?? 200, runPage({ viewer: c.viewer, timeline, version, nonce, notice: extra.notice, alert: extra.alert }), nonce);
  };

  const notFoundPage = async (viewer: ConsoleViewer, problem: string) => {
    const rows = await listRunsFiltered(pool, { limit: pageSize + 1 });
    const form = { workflow: '', status: '', requester: '', before: '' };
    return runsPage({ viewer, form, workflows: runtime.registry.names(), ...(await onePage(rows)), problems: [problem] });
  };

  mount('GET', '/console', async (c) => {
    const { form, status, requester, problems } = runsFilter(c.url);
    const rows = await listRunsFiltered(pool, {
      workflow: form.workflow || undefined,
      status,
      requester,
      before: form.before || undefined,
      limit: pageSize + 1,
    });
    sendHtml(c.res, problems.length ? 400 : 200, runsPage({ viewer: c.viewer, form, workflows: runtime.registry.names(), ...(await onePage(rows)), problems }));
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
      const t = await loadTimeline(runId);
      return t ? timelineFragment(t, c.viewer).text : undefined;
    });
  });

  if (r.chat) mountAmendRoutes({ chat: r.chat, mount, refuse: (c, runId, status, alert) => showRun(c, runId, { status, alert }) });

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
}

/** The runs list's filter form as sent, what of it applies, and why the rest does not. */
function runsFilter(url: URL): {
  form: { workflow: string; status: string; requester: string; before: string };
  status?: RunStatus;
  requester?: Principal;
  problems: string[];
} {
  const param = (name: string) => (url.searchParams.get(name) ?? '').trim();
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
  return { form, status, requester, problems };
}
