/**
 * `GET /console/my/approvals`: for the signed-in person, the approvals they may decide now (the
 * one eligibility rule, as chat asks it), with Approve and Reject, and the ones they decided,
 * newest first. Live like the pending list (approvals-page.ts).
 */
import type { ApprovalView } from '../views/approval-view.ts';
import { approvalCard, type DecideOptions } from './approval-card.ts';
import { APPROVALS_LIVE_SCRIPT, liveList, notes, type PageNotes } from './approvals-page.ts';
import type { ConsoleViewer } from './auth.ts';
import { html, type Html } from './html.ts';
import { page } from './layout.ts';

/** How many of the person's decided approvals the page lists. */
export const DECIDED_SHOWN = 50;

export function myApprovalsFragment(waiting: ApprovalView[], decided: ApprovalView[], decide: DecideOptions): Html {
  return html`<h2>Waiting for you</h2>
${
  waiting.length === 0
    ? html`<p class="muted" data-testid="nothing-waiting">Nothing waits for your decision.</p>`
    : html`<div data-testid="waiting">${waiting.map((a) => approvalCard(a, { showRun: true, decide }))}</div>`
}
<h2>Decided by you</h2>
${
  decided.length === 0
    ? html`<p class="muted" data-testid="nothing-decided">You have decided no approval yet.</p>`
    : html`<div data-testid="decided">${decided.map((a) => approvalCard(a, { showRun: true }))}</div>
<p class="muted">Your newest ${DECIDED_SHOWN} decisions at most.</p>`
}`;
}

export function myApprovalsPage(
  opts: { viewer: ConsoleViewer; waiting: ApprovalView[]; decided: ApprovalView[]; decide: DecideOptions; version: string; nonce: string } & PageNotes,
): string {
  const body = html`
<h1>My approvals</h1>
${notes(opts)}
${liveList('/console/my/approvals/events', opts.version, myApprovalsFragment(opts.waiting, opts.decided, opts.decide))}`;
  return page({ title: 'My approvals', viewer: opts.viewer, section: 'my-approvals', body, script: { nonce: opts.nonce, code: APPROVALS_LIVE_SCRIPT } });
}

/** Any "my" page without a signed-in person: who they are is what the page is about. */
export function signInFirstPage(viewer: ConsoleViewer, what: string, section: 'my-approvals' | 'my-runs'): string {
  const body = html`
<h1>${what}</h1>
<div class="alert" role="alert" data-testid="sign-in-first">${what} are a signed-in person's: <a href="/console/sign-in">sign in</a> with your personal token to see yours.</div>`;
  return page({ title: what, viewer, section, body });
}
