/**
 * One approval as the console shows it, on a run's timeline and on the pending list: what the
 * approvers were shown (the exact parameters and their hash, which the decision binds to), the
 * rule, and every decision with who, how and when. Rendered from the chat's `ApprovalView`.
 */
import { formatPrincipal } from '../common/principals.ts';
import { describeRule, type ApprovalView } from '../views/approval-view.ts';
import { formatTime, html, jsonBlock, statusBadge, type Html } from './html.ts';

function paramsTable(params: Record<string, unknown> | null): Html {
  if (!params || Object.keys(params).length === 0) return html`<p class="muted">No parameters.</p>`;
  return html`<table class="params" data-testid="params"><tbody>${Object.entries(params).map(
    ([k, v]) =>
      html`<tr><th>${k}</th><td>${v !== null && typeof v === 'object' ? jsonBlock(v) : typeof v === 'string' ? v : html`<code>${String(v)}</code>`}</td></tr>`,
  )}</tbody></table>`;
}

export function approvalCard(a: ApprovalView, opts: { showRun?: boolean } = {}): Html {
  const progress = a.status === 'pending' ? html` · <strong>${a.approvals} of ${a.required}</strong> so far` : '';
  return html`<section class="card approval" data-approval-id="${a.id}">
  <h3>${statusBadge(a.status)} ${a.summary}</h3>
  <dl class="facts">
    <dt>Approval</dt><dd><code>${a.id}</code>${opts.showRun ? html` of run <a href="/console/runs/${encodeURIComponent(a.runId)}"><code>${a.runId}</code></a> (${a.workflow})` : ''}</dd>
    <dt>Step</dt><dd>${a.step}</dd>
    ${a.tool ? html`<dt>Covers tool</dt><dd><code>${a.tool}</code></dd>` : ''}
    <dt>Approvers</dt><dd>${a.approvers} · ${describeRule(a)}${progress}</dd>
    ${a.requestedBy ? html`<dt>Requested by</dt><dd>${formatPrincipal(a.requestedBy)}</dd>` : ''}
    ${a.risk ? html`<dt>Risk</dt><dd>${a.risk}</dd>` : ''}
    ${a.rationale ? html`<dt>Why</dt><dd>${a.rationale}</dd>` : ''}
    ${a.deadline ? html`<dt>Deadline</dt><dd>${formatTime(a.deadline)}</dd>` : ''}
    ${a.autoReason ? html`<dt>Approved by rule</dt><dd>${a.autoReason}</dd>` : ''}
    ${a.endReason ? html`<dt>Ended</dt><dd>${a.endReason}</dd>` : ''}
  </dl>
  <h4>Shown to approvers</h4>
  ${paramsTable(a.params)}
  <p>Parameters hash (sha256 of their canonical JSON; the decision binds to it): <code data-testid="params-hash">${a.paramsHash ?? '—'}</code></p>
  ${
    a.decisions.length === 0
      ? html`<p class="muted">No decision yet.</p>`
      : html`<table data-testid="decisions"><thead><tr><th>Who</th><th>Decided</th><th>Comment</th><th>Via</th><th>When</th></tr></thead><tbody>${a.decisions.map(
          (d) =>
            html`<tr><td>${d.principal}${d.onBehalfOf ? ` on behalf of ${d.onBehalfOf}` : ''}</td><td>${statusBadge(d.decision === 'approve' ? 'approved' : 'rejected', d.decision)}</td><td>${d.comment ?? ''}</td><td>${d.via ?? '—'}</td><td>${formatTime(d.at)}</td></tr>`,
        )}</tbody></table>`
  }
</section>`;
}
