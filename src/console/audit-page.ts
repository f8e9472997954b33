/** `GET /console/audit`: the result of the last `verifyAuditChain` this process ran, and a button to run it now. */
import { formatVerifyReport } from '../audit/verify.ts';
import type { AuditState } from './audit-status.ts';
import type { ConsoleViewer } from './auth.ts';
import { csrfField, formatTime, html, statusBadge } from './html.ts';
import { page } from './layout.ts';

export function auditPage(opts: { viewer: ConsoleViewer; state: AuditState }): string {
  const { state } = opts;
  const r = state.last?.report;
  const result = state.running
    ? html`<p data-testid="audit-status">${statusBadge('running', 'verifying…')} reload this page in a moment.</p>`
    : state.failed
      ? html`<div class="alert" role="alert" data-testid="audit-status">Verification could not run at ${formatTime(state.failed.at)}: ${state.failed.message}</div>`
      : !state.last
        ? html`<p class="muted" data-testid="audit-status">Not verified since this process started. Verifying walks every chain of the event log; press the button to do it now.</p>`
        : html`<p data-testid="audit-status">${statusBadge(r?.ok ? 'ok' : 'broken', r?.ok ? 'verified: intact' : 'BROKEN')} at ${formatTime(state.last.at)}</p>`;
  const body = html`
<h1>Audit chain</h1>
${result}
<form method="post" action="/console/audit/verify" class="actions">${csrfField(opts.viewer)}<button type="submit" class="primary">Verify now</button></form>
${
  r
    ? html`<dl class="facts">
  <dt>Chains</dt><dd>${r.chains}</dd><dt>Events</dt><dd>${r.events}</dd><dt>Decisions</dt><dd>${r.decisions}</dd>
  <dt>Checkpoints</dt><dd>${r.checkpoints}</dd><dt>Purged payloads</dt><dd>${r.purgedPayloads}</dd>
  <dt>Newest checkpoint</dt><dd>${r.newestCheckpoint ? html`<code>${r.newestCheckpoint.hash}</code> (seq ${r.newestCheckpoint.seq}, ${r.newestCheckpoint.at})` : 'none yet'}</dd>
</dl>
${r.problems.length ? html`<h2>Problems</h2><ul>${r.problems.map((p) => html`<li class="error">${p.runId ? html`run <a href="/console/runs/${encodeURIComponent(p.runId)}"><code>${p.runId}</code></a>: ` : ''}${p.reason}</li>`)}</ul>` : ''}
<h2>Report</h2><pre>${formatVerifyReport(r)}</pre>`
    : ''
}
<p class="muted">The same check as <code>tollgate audit verify</code>: every event's HMAC recomputed under the audit key, chains without gaps, checkpoints matched, decisions matched to their events.</p>`;
  return page({ title: 'Audit', viewer: opts.viewer, section: 'audit', body });
}
