/** `GET /console/my/runs`: the runs the signed-in person requested, newest first, a page at a time. */
import { STATUS_LABELS, type RunView } from '../views/run-view.ts';
import type { ConsoleViewer } from './auth.ts';
import { formatDuration, formatTime, html, statusBadge } from './html.ts';
import { page } from './layout.ts';

export function myRunsPage(opts: { viewer: ConsoleViewer; runs: RunView[]; more: boolean; before: string }): string {
  const { runs } = opts;
  const body = html`
<h1>My runs</h1>
<p class="muted">The runs you requested, from chat, the CLI or here, newest first. You may retry or cancel them on their pages.</p>
${
  runs.length === 0
    ? html`<p class="muted" data-testid="no-runs">You have requested no run${opts.before ? ' older than these' : ''}.</p>`
    : html`<table data-testid="my-runs">
  <thead><tr><th>Run</th><th>Workflow</th><th>Status</th><th>Created</th><th>Duration</th></tr></thead>
  <tbody>${runs.map(
    (r) => html`<tr data-run-id="${r.runId}">
    <td><a href="/console/runs/${encodeURIComponent(r.runId)}"><code>${r.runId}</code></a></td>
    <td>${r.workflow} <span class="muted">v${r.version}</span></td>
    <td>${statusBadge(r.status, STATUS_LABELS[r.status])}</td>
    <td>${formatTime(r.createdAt)}</td>
    <td>${r.finishedAt ? formatDuration(r.finishedAt.getTime() - r.createdAt.getTime()) : html`<span class="muted">not finished</span>`}</td>
  </tr>`,
  )}</tbody>
</table>
<p class="muted">${opts.before ? html`<a href="/console/my/runs">Newest runs</a> ` : ''}${
        opts.more ? html`<a href="/console/my/runs?before=${encodeURIComponent(runs[runs.length - 1]?.runId ?? '')}" rel="next">Older runs</a>` : ''
      }</p>`
}`;
  return page({ title: 'My runs', viewer: opts.viewer, section: 'my-runs', body });
}
