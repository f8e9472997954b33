/** `GET /console/approvals`: every approval waiting for a decision, oldest first, with what its approvers see. */
import type { ApprovalView } from '../views/approval-view.ts';
import { approvalCard } from './approval-card.ts';
import type { ConsoleViewer } from './auth.ts';
import { html } from './html.ts';
import { page } from './layout.ts';

export function approvalsPage(opts: { viewer: ConsoleViewer; approvals: ApprovalView[] }): string {
  const body = html`
<h1>Pending approvals</h1>
<p class="muted">Decide them where they were asked (Slack, Teams) or with <code>tollgate approve &lt;id&gt;</code>; the console shows them only.</p>
${opts.approvals.length === 0 ? html`<p class="muted" data-testid="no-approvals">No approval is waiting.</p>` : opts.approvals.map((a) => approvalCard(a, { showRun: true }))}`;
  return page({ title: 'Pending approvals', viewer: opts.viewer, section: 'approvals', body });
}
