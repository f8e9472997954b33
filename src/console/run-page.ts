/**
 * `GET /console/runs/<id>`: a run's timeline. The page is whole without JavaScript; with it, a
 * small inline script listens to `/console/runs/<id>/events` (server-sent events, live.ts) and
 * swaps in the timeline fragment (`timelineFragment`) whenever the run changes.
 */
import { ACTION_IDS, STATUS_LABELS, type StepView } from '../views/run-view.ts';
import type { TimelineView } from '../views/timeline-view.ts';
import { approvalCard } from './approval-card.ts';
import type { ConsoleViewer } from './auth.ts';
import { csrfField, formatDuration, formatTime, html, jsonBlock, statusBadge, type Html } from './html.ts';
import { page } from './layout.ts';
import { namedString, person } from './people.ts';

/** How many of the newest events the timeline lists (the CLI's `runs show --json` has them all). */
const EVENTS_SHOWN = 200;

export const runPath = (runId: string) => `/console/runs/${encodeURIComponent(runId)}`;

function actions(t: TimelineView, viewer: ConsoleViewer): Html {
  const { run } = t;
  const offered = run.actions;
  if (offered.length === 0) return html``;
  const disabled = viewer.principal ? '' : html` disabled title="Sign in to retry or cancel"`;
  return html`<div class="actions" data-testid="actions">
  ${offered.includes(ACTION_IDS.retry) ? html`<form method="post" action="${runPath(run.runId)}/retry">${csrfField(viewer)}<button type="submit" class="primary"${disabled}>Retry</button></form>` : ''}
  ${offered.includes(ACTION_IDS.edit) ? html`<a class="button" href="${runPath(run.runId)}/edit" data-testid="edit-and-retry">Edit and retry</a>` : ''}
  ${offered.includes(ACTION_IDS.resolve) ? html`<a class="button" href="${runPath(run.runId)}/resolve" data-testid="resolve">Resolve…</a>` : ''}
  ${offered.includes(ACTION_IDS.cancel) ? html`<form method="post" action="${runPath(run.runId)}/cancel">${csrfField(viewer)}<button type="submit" class="danger"${disabled}>Cancel run</button></form>` : ''}
  ${viewer.principal ? '' : html`<span class="muted"><a href="/console/sign-in">Sign in</a> to retry or cancel; only the run's requester or an operator may.</span>`}
</div>`;
}

function details(label: string, value: unknown): Html {
  if (value === null || value === undefined) return html``;
  return html`<details><summary>${label}</summary>${jsonBlock(value)}</details>`;
}

function stepRows(s: StepView): Html {
  return html`<tr data-step="${s.name}" data-step-status="${s.status}">
  <td>${s.idx}</td><td>${s.name}</td><td>${s.kind}</td><td>${statusBadge(s.status)}</td><td>${s.attempts}</td>
  <td>${formatTime(s.startedAt)}</td><td>${formatDuration(s.durationMs)}</td>
  <td>${details('input', s.input)}${details('output', s.output)}</td>
</tr>${s.error ? html`<tr class="step-error"><td></td><td colspan="7" class="error" data-testid="step-error">${s.error}</td></tr>` : ''}`;
}

function usd(n: number | null): string {
  return n === null ? '—' : `$${n.toFixed(n !== 0 && n < 0.01 ? 6 : 4)}`;
}

/** Everything of the run that changes while it runs: the part live updates swap. */
export function timelineFragment(t: TimelineView & { names?: ReadonlyMap<string, string> }, viewer: ConsoleViewer): Html {
  const { run } = t;
  const events = t.events.slice(-EVENTS_SHOWN);
  return html`
<p data-testid="run-status">${statusBadge(run.status, STATUS_LABELS[run.status])}
  ${run.waiting ? html` waiting for ${run.waiting.reason}${run.waiting.until ? html` until ${formatTime(run.waiting.until)}` : ''}` : ''}
  ${run.cancelRequested ? html` <span class="muted">(cancellation requested)</span>` : ''}</p>
${run.error ? html`<div class="alert"><span class="error" data-testid="run-error">${run.error.step ? `Step "${run.error.step}" failed: ` : ''}${run.error.message}</span></div>` : ''}
${actions(t, viewer)}
<dl class="facts">
  <dt>Requester</dt><dd>${person(run.requester)}</dd>
  <dt>Created</dt><dd>${formatTime(run.createdAt)}</dd>
  <dt>Finished</dt><dd>${formatTime(run.finishedAt)}${run.finishedAt ? html` (${formatDuration(run.finishedAt.getTime() - run.createdAt.getTime())})` : ''}</dd>
</dl>
<h2>Input</h2>${jsonBlock(run.input)}
${run.output !== null && run.output !== undefined ? html`<h2>Output</h2>${jsonBlock(run.output)}` : ''}

<h2>Steps</h2>
${
  run.steps.length === 0
    ? html`<p class="muted">No step has started yet.</p>`
    : html`<table data-testid="steps"><thead><tr><th>#</th><th>Step</th><th>Kind</th><th>Status</th><th>Attempts</th><th>Started</th><th>Duration</th><th>Recorded</th></tr></thead>
<tbody>${run.steps.map(stepRows)}</tbody></table>`
}

<h2>Approvals</h2>
${run.approvals.length === 0 ? html`<p class="muted">This run has asked for no approval.</p>` : run.approvals.map((a) => approvalCard(a))}

<h2>Tool calls</h2>
${
  t.toolCalls.length === 0
    ? html`<p class="muted">No tool calls.</p>`
    : html`<table data-testid="tool-calls"><thead><tr><th>Tool</th><th>Status</th><th>Attempts</th><th>Duration</th><th>Input</th><th>Output</th></tr></thead><tbody>${t.toolCalls.map(
        (s) =>
          html`<tr><td><code>${s.name}</code></td><td>${statusBadge(s.status)}</td><td>${s.attempts}</td><td>${formatDuration(s.durationMs)}</td><td>${jsonBlock(s.input)}</td><td>${s.error ? html`<span class="error">${s.error}</span>` : jsonBlock(s.output)}</td></tr>`,
      )}</tbody></table>`
}

<h2>Model calls</h2>
${
  t.modelCalls.length === 0
    ? html`<p class="muted">No model calls.</p>`
    : html`<table data-testid="model-calls"><thead><tr><th>When</th><th>Step</th><th>Model</th><th>Prompt</th><th>Input tokens</th><th>Output tokens</th><th>Cost</th><th>Latency</th></tr></thead><tbody>${t.modelCalls.map(
        (c) =>
          html`<tr><td>${formatTime(c.at)}</td><td>${c.stepIdx ?? '—'}</td><td>${c.recorded ? (c.model ?? '—') : html`<span class="muted">purged by retention</span>`}</td><td>${c.prompt ? `${c.prompt.name}@${c.prompt.version}` : '—'}</td><td>${c.inputTokens ?? '—'}</td><td>${c.outputTokens ?? '—'}</td><td>${usd(c.costUsd)}</td><td>${formatDuration(c.latencyMs)}</td></tr>`,
      )}
  <tr><th colspan="4">Total (${t.modelTotals.calls} call${t.modelTotals.calls === 1 ? '' : 's'})</th><th>${t.modelTotals.inputTokens}</th><th>${t.modelTotals.outputTokens}</th><th data-testid="model-cost">${usd(t.modelTotals.costUsd)}</th><th></th></tr></tbody></table>`
}

<h2>Events</h2>
${t.events.length > EVENTS_SHOWN ? html`<p class="muted">The newest ${EVENTS_SHOWN} of ${t.events.length} events.</p>` : ''}
<table data-testid="events"><thead><tr><th>#</th><th>When</th><th>Event</th><th>Step</th><th>By</th><th>Via</th></tr></thead><tbody>${events.map(
    (e) =>
      html`<tr><td>${e.id}</td><td>${formatTime(e.at)}</td><td><code>${e.type}</code></td><td>${e.stepIdx ?? ''}</td><td>${e.actor ? person(namedString(e.actor, t.names)) : ''}</td><td>${e.via ?? ''}</td></tr>`,
  )}</tbody></table>`;
}

/** Swaps the timeline in when the server sends a new one; without EventSource, the page stays as loaded. */
const LIVE_SCRIPT = `(function () {
  var el = document.getElementById('timeline');
  if (!el || !window.EventSource) return;
  var source = new EventSource(el.getAttribute('data-live') + '?since=' + encodeURIComponent(el.getAttribute('data-version') || ''));
  source.addEventListener('timeline', function (e) {
    el.innerHTML = e.data;
    el.setAttribute('data-version', e.lastEventId);
  });
})();`;

export function runPage(opts: {
  viewer: ConsoleViewer;
  timeline: TimelineView;
  /** What the timeline was drawn from (timelineVersion): live updates start after it. */
  version: string;
  nonce: string;
  notice?: string;
  alert?: string;
}): string {
  const { run } = opts.timeline;
  const body = html`
<h1>Run <code>${run.runId}</code> · ${run.workflow} <span class="muted">v${run.version}</span></h1>
<div class="actions"><a class="button" href="${runPath(run.runId)}/evidence" data-testid="export-evidence">Export evidence</a> <a href="/console?workflow=${encodeURIComponent(run.workflow)}">Other ${run.workflow} runs</a></div>
${opts.notice ? html`<div class="notice" role="status" data-testid="notice">${opts.notice}</div>` : ''}
${opts.alert ? html`<div class="alert" role="alert" data-testid="refusal">${opts.alert}</div>` : ''}
<div id="timeline" data-live="${runPath(run.runId)}/events" data-version="${opts.version}">${timelineFragment(opts.timeline, opts.viewer)}</div>`;
  return page({ title: `Run ${run.runId}`, viewer: opts.viewer, section: 'runs', body, script: { nonce: opts.nonce, code: LIVE_SCRIPT } });
}
