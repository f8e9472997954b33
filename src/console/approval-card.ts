/**
 * One approval as the console shows it, on a run's timeline and on the approvals pages: what the
 * approvers were shown (the exact parameters and their hash, which the decision binds to), the
 * rule, every decision with who (by name, src/console/people.ts), how and when, and, for a
 * signed-in person the one eligibility rule lets decide now, Approve and Reject (a reason
 * required). Rendered from the chat's `ApprovalView`.
 */
import { createHash } from 'node:crypto';
import { eligibilityOnView } from '../chat/viewer.ts';
import type { Principal } from '../common/principals.ts';
import { describeRule, type ApprovalView } from '../views/approval-view.ts';
import { csrfField, formatTime, html, jsonBlock, statusBadge, type Html } from './html.ts';
import { person } from './people.ts';

/** The longest reason a console Reject takes (as Teams' reason input). */
export const REASON_MAX_LENGTH = 2000;

export const approvalPath = (approvalId: string) => `/console/approvals/${encodeURIComponent(approvalId)}`;

/** Where the decide buttons send the person back to, and who is looking (null: not signed in). */
export interface DecideOptions {
  viewer: Principal | null;
  /** The page to come back to after deciding (`/console/approvals`, `/console/my/approvals`). */
  back: string;
  /** The viewer's CSRF token (auth.ts), carried by each form. */
  csrf: string;
  /** A refused Reject of this approval: the reason field shows this sentence and what was typed. */
  problem?: { approvalId: string; message: string; comment: string };
}

function paramsTable(params: Record<string, unknown> | null): Html {
  if (!params || Object.keys(params).length === 0) return html`<p class="muted">No parameters.</p>`;
  return html`<table class="params" data-testid="params"><tbody>${Object.entries(params).map(
    ([k, v]) =>
      html`<tr><th>${k}</th><td>${v !== null && typeof v === 'object' ? jsonBlock(v) : typeof v === 'string' ? v : html`<code>${String(v)}</code>`}</td></tr>`,
  )}</tbody></table>`;
}

/**
 * Approve and Reject, each only where the one eligibility rule (as chat asks it, on what the
 * view carries) says the viewer may decide now; `decide` stays the authority at the POST.
 */
function decideForms(a: ApprovalView, d: DecideOptions): Html {
  if (a.status !== 'pending') return html``;
  if (!d.viewer)
    return html`<p class="muted" data-testid="sign-in-to-decide"><a href="/console/sign-in">Sign in</a> to decide, if you are one of its approvers.</p>`;
  const approve = eligibilityOnView(a, d.viewer, 'approve').may;
  const reject = eligibilityOnView(a, d.viewer, 'reject').may;
  if (!approve && !reject) return html``;
  const problem = d.problem?.approvalId === a.id ? d.problem : undefined;
  const back = html`<input type="hidden" name="back" value="${d.back}">${csrfField(d)}`;
  return html`<div class="actions decide" data-testid="decide">
  ${approve ? html`<form method="post" action="${approvalPath(a.id)}/approve">${back}<button type="submit" class="primary">Approve</button></form>` : ''}
  ${
    reject
      ? html`<form method="post" action="${approvalPath(a.id)}/reject" class="reject">${back}
    <label>Reason for rejecting (required; the requester sees it)<br><textarea name="comment" rows="2" cols="48" required maxlength="${REASON_MAX_LENGTH}" data-testid="reason">${problem?.comment ?? ''}</textarea></label>
    ${problem ? html`<div class="error" role="alert" data-testid="reason-problem">${problem.message}</div>` : ''}
    <button type="submit" class="danger">Reject</button></form>`
      : ''
  }
</div>`;
}

export function approvalCard(a: ApprovalView, opts: { showRun?: boolean; decide?: DecideOptions } = {}): Html {
  const progress = a.status === 'pending' ? html` · <strong>${a.approvals} of ${a.required}</strong> so far` : '';
  const body = html`
  <h3>${statusBadge(a.status)} ${a.summary}</h3>
  <dl class="facts">
    <dt>Approval</dt><dd><code>${a.id}</code>${opts.showRun ? html` of run <a href="/console/runs/${encodeURIComponent(a.runId)}"><code>${a.runId}</code></a> (${a.workflow})` : ''}</dd>
    <dt>Step</dt><dd>${a.step}</dd>
    ${a.tool ? html`<dt>Covers tool</dt><dd><code>${a.tool}</code></dd>` : ''}
    <dt>Approvers</dt><dd>${a.approvers} · ${describeRule(a)}${progress}</dd>
    ${a.requestedBy ? html`<dt>Requested by</dt><dd data-testid="requested-by">${person(a.requestedBy)}</dd>` : ''}
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
            html`<tr><td>${person(d.by ?? d.principal)}${d.onBehalfOf ? html` on behalf of ${person(d.onBehalfOf)}` : ''}</td><td>${statusBadge(d.decision === 'approve' ? 'approved' : 'rejected', d.decision)}</td><td>${d.comment ?? ''}</td><td>${d.via ?? '—'}</td><td>${formatTime(d.at)}</td></tr>`,
        )}</tbody></table>`
  }
  ${opts.decide ? decideForms(a, opts.decide) : ''}`;
  // What the card shows, as a digest: a live update leaves a card whose digest did not change as
  // it is, so a reason being typed into it is not lost.
  const digest = createHash('sha256').update(body.text).digest('base64url').slice(0, 16);
  return html`<section class="card approval" data-approval-id="${a.id}" data-digest="${digest}">${body}
</section>`;
}
