/** `GET /console`: the runs, newest first, narrowed by a plain GET form (workflow, status, requester). */
import type { RunStatus } from '../db/queries/runs.ts';
import { STATUS_LABELS, type RunView } from '../views/run-view.ts';
import type { ConsoleViewer } from './auth.ts';
import { formatDuration, formatTime, html, statusBadge } from './html.ts';
import { page } from './layout.ts';
import { person } from './people.ts';

export interface RunsFilterForm {
  workflow: string;
  status: string;
  requester: string;
  /** The run this page lists runs older than ("" for the newest). */
  before: string;
}

/** The list's address with these filters, from `before` on (the filter form drops `before`: a new filter starts at the newest). */
function listHref(form: RunsFilterForm, before: string): string {
  const q = new URLSearchParams();
  for (const key of ['workflow', 'status', 'requester'] as const) if (form[key]) q.set(key, form[key]);
  if (before) q.set('before', before);
  const query = q.toString();
  return query ? `/console?${query}` : '/console';
}

export const RUN_STATUSES = Object.keys(STATUS_LABELS) as RunStatus[];

export function runsPage(opts: {
  viewer: ConsoleViewer;
  form: RunsFilterForm;
  workflows: readonly string[];
  runs: RunView[];
  problems: string[];
  more: boolean;
}): string {
  const { form } = opts;
  const workflows = [...new Set([...opts.workflows, ...(form.workflow ? [form.workflow] : [])])].sort();
  const option = (value: string, label: string, selected: string) =>
    html`<option value="${value}"${selected === value ? html` selected` : ''}>${label}</option>`;
  const filtered = form.workflow || form.status || form.requester;
  const body = html`
<h1>Runs</h1>
<form class="filters" method="get" action="/console">
  <label>Workflow<select name="workflow">${option('', 'any', form.workflow)}${workflows.map((w) => option(w, w, form.workflow))}</select></label>
  <label>Status<select name="status">${option('', 'any', form.status)}${RUN_STATUSES.map((s) => option(s, s, form.status))}</select></label>
  <label>Requester<input name="requester" value="${form.requester}" placeholder="slack:T123:U456" size="28"></label>
  <button type="submit" class="primary">Filter</button>
  ${filtered ? html`<a href="/console">Clear</a>` : ''}
</form>
${opts.problems.map((p) => html`<div class="alert" role="alert">${p}</div>`)}
${
  opts.runs.length === 0
    ? html`<p class="muted" data-testid="no-runs">No runs${filtered ? ' match these filters' : ' yet'}.</p>`
    : html`<table data-testid="runs">
  <thead><tr><th>Run</th><th>Workflow</th><th>Status</th><th>Requester</th><th>Created</th><th>Duration</th></tr></thead>
  <tbody>${opts.runs.map(
    (r) => html`<tr data-run-id="${r.runId}">
    <td><a href="/console/runs/${encodeURIComponent(r.runId)}"><code>${r.runId}</code></a></td>
    <td>${r.workflow} <span class="muted">v${r.version}</span></td>
    <td>${statusBadge(r.status, STATUS_LABELS[r.status])}</td>
    <td>${person(r.requester)}</td>
    <td>${formatTime(r.createdAt)}</td>
    <td>${r.finishedAt ? formatDuration(r.finishedAt.getTime() - r.createdAt.getTime()) : html`<span class="muted">not finished</span>`}</td>
  </tr>`,
  )}</tbody>
</table>
<p class="muted">${opts.runs.length} ${form.before ? 'older ' : ''}matching run${opts.runs.length === 1 ? '' : 's'}, newest first.
  ${form.before ? html`<a href="${listHref(form, '')}" data-testid="newest-runs">Newest runs</a>` : ''}
  ${opts.more ? html`<a href="${listHref(form, opts.runs[opts.runs.length - 1]?.runId ?? '')}" rel="next" data-testid="older-runs">Older runs</a>` : ''}</p>`
}`;
  return page({ title: 'Runs', viewer: opts.viewer, section: 'runs', body });
}
