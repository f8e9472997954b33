/**
 * `GET /console/approvals`: every approval waiting for a decision, oldest first, with what its
 * approvers see, and Approve and Reject for a signed-in person the eligibility rule lets decide
 * (decide-routes.ts). The list updates live (live.ts): a small inline script swaps in the cards
 * that changed and leaves the others as they are, so a reason being typed survives.
 */
import type { ApprovalView } from '../views/approval-view.ts';
import { approvalCard, type DecideOptions } from './approval-card.ts';
import type { ConsoleViewer } from './auth.ts';
import { html, type Html } from './html.ts';
import { page } from './layout.ts';

/** Swaps in the cards that changed; a card whose digest is the same stays (with what is typed in it). */
export const APPROVALS_LIVE_SCRIPT = `(function () {
  var el = document.getElementById('approvals-live');
  if (!el || !window.EventSource) return;
  var source = new EventSource(el.getAttribute('data-live') + '?since=' + encodeURIComponent(el.getAttribute('data-version') || ''));
  source.addEventListener('approvals', function (e) {
    var next = document.createElement('div');
    next.innerHTML = e.data;
    next.querySelectorAll('[data-approval-id]').forEach(function (card) {
      var old = el.querySelector('[data-approval-id="' + CSS.escape(card.getAttribute('data-approval-id')) + '"]');
      if (old && old.getAttribute('data-digest') === card.getAttribute('data-digest')) card.replaceWith(old);
    });
    el.replaceChildren.apply(el, Array.prototype.slice.call(next.childNodes));
    el.setAttribute('data-version', e.lastEventId);
  });
})();`;

/** What a decision page says on top: what was recorded, or why not. */
export interface PageNotes {
  notice?: string;
  alert?: string;
}

export function notes(n: PageNotes): Html {
  return html`${n.notice ? html`<div class="notice" role="status" data-testid="notice">${n.notice}</div>` : ''}${
    n.alert ? html`<div class="alert" role="alert" data-testid="refusal">${n.alert}</div>` : ''
  }`;
}

/** The live part of an approvals page, as the stream sends it. */
export function approvalsFragment(approvals: ApprovalView[], decide: DecideOptions): Html {
  return approvals.length === 0
    ? html`<p class="muted" data-testid="no-approvals">No approval is waiting.</p>`
    : html`${approvals.map((a) => approvalCard(a, { showRun: true, decide }))}`;
}

/** The live container: `live` is the stream's address, `version` what the fragment was drawn from. */
export function liveList(live: string, version: string, fragment: Html): Html {
  return html`<div id="approvals-live" data-live="${live}" data-version="${version}">${fragment}</div>`;
}

export function approvalsPage(
  opts: { viewer: ConsoleViewer; approvals: ApprovalView[]; decide: DecideOptions; version: string; nonce: string } & PageNotes,
): string {
  const body = html`
<h1>Pending approvals</h1>
${notes(opts)}
<p class="muted">Decide here, where they were asked (Slack, Teams) or with <code>tollgate approve &lt;id&gt;</code>: the same rule says who may, everywhere. Signed in, you see Approve and Reject on the approvals you may decide now.</p>
${liveList('/console/approvals/events', opts.version, approvalsFragment(opts.approvals, opts.decide))}`;
  return page({ title: 'Pending approvals', viewer: opts.viewer, section: 'approvals', body, script: { nonce: opts.nonce, code: APPROVALS_LIVE_SCRIPT } });
}
