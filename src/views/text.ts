/**
 * The words every chat platform uses to describe runs and approvals, written once: each platform
 * supplies its own markup (`Markup`: how to escape, embolden, quote code, name a person, show a
 * date) and gets the same sentences, so Slack and Teams say the same thing in their own format.
 *
 * Pure: the same view and markup always give the same text (the outbox hashes renderings).
 */
import type { Principal } from '../common/principals.ts';
import { deciders, describeRule, otherDecisions, type ApprovalDecisionView, type ApprovalView } from './approval-view.ts';
import type { OutdatedView } from './outdated-view.ts';
import type { StepView } from './run-view.ts';

/** How one platform marks up text. `bold` takes text already escaped; `code` takes raw text. */
export interface Markup {
  text(s: string): string;
  bold(s: string): string;
  code(s: string): string;
  person(p: Principal | null | undefined): string;
  date(d: Date): string;
}

/** Cuts `s` to at most `max` characters, ending in an ellipsis when cut. */
export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  return `${s.slice(0, Math.max(0, max - 1))}…`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return m < 60 ? `${m} min ${s} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** The last `visible` steps, and a sentence counting the older ones folded away (null when none are). */
export function foldSteps(steps: StepView[], visible: number): { earlier: string | null; shown: StepView[] } {
  const shown = steps.slice(-visible);
  const folded = steps.slice(0, steps.length - shown.length);
  if (folded.length === 0) return { earlier: null, shown };
  const ok = folded.filter((s) => s.status === 'succeeded').length;
  return { earlier: `… ${folded.length} earlier step${folded.length === 1 ? '' : 's'} (${ok} succeeded)`, shown };
}

/** A step's name (cut to 80 characters) and what is known of it: duration or status, attempts. */
export function stepText(s: StepView, m: Pick<Markup, 'text'>): string {
  let line = m.text(truncate(s.name, 80));
  if (s.durationMs !== null) line += ` · ${formatDuration(s.durationMs)}`;
  else line += ` · ${s.status}`;
  if (s.attempts > 1) line += ` · ${s.attempts} attempts`;
  return line;
}

function decisionList(list: ApprovalDecisionView[], m: Markup): string {
  const who = (p: Principal | null | undefined, s: string) => (p ? m.person(p) : m.text(s));
  return list.map((d) => `${who(d.by, d.principal)}${d.onBehalfOf ? ` on behalf of ${who(d.onBehalfOfWho, d.onBehalfOf)}` : ''} ${m.date(d.at)}`).join(', ');
}

/**
 * One approval as every copy shows it: what is asked and why, who may decide and the rule; while
 * pending, the live tally naming who approved so far; once resolved, everyone who decided.
 */
export function approvalLines(a: ApprovalView, m: Markup): string[] {
  const lines = [m.bold(`Approval for ${m.text(a.step)}`)];
  if (a.tool) lines.push(`Tool: ${m.code(a.tool)}`);
  if (a.params) lines.push(`Parameters: ${m.code(truncate(JSON.stringify(a.params), 800))}`);
  if (a.risk) lines.push(`Risk: ${m.text(a.risk)}`);
  if (a.rationale) lines.push(`Rationale: ${m.text(truncate(a.rationale, 600))}`);
  if (a.requestedBy) lines.push(`Asked by ${m.person(a.requestedBy)}`);
  lines.push(`Approvers: ${m.text(a.approvers) || '(none)'} · ${describeRule(a)}`);
  if (a.deadline) lines.push(`Deadline: ${m.date(a.deadline)}`);
  const approvedSoFar = a.decisions.filter((d) => d.decision === 'approve');
  if (a.status === 'pending') {
    lines.push(
      approvedSoFar.length === 0
        ? `So far: no approvals (0 of ${a.required})`
        : `So far: ${a.approvals} of ${a.required} approval${a.required === 1 ? '' : 's'} (approved by ${decisionList(approvedSoFar, m)})`,
    );
    return lines;
  }
  const ended = deciders(a);
  let decided = m.bold(`${a.status[0]?.toUpperCase()}${a.status.slice(1)}`);
  if (ended.length > 0) decided += ` by ${decisionList(ended, m)}`;
  const reason = a.status === 'rejected' ? ended.at(-1)?.comment : a.endReason;
  if (reason) decided += `: ${m.text(truncate(reason, 500))}`;
  lines.push(decided);
  const earlier = otherDecisions(a).filter((d) => d.decision === 'approve');
  if (earlier.length > 0) lines.push(`Approved before that by ${decisionList(earlier, m)}`);
  return lines;
}

/** A copy's headline: "Approval needed: <summary>" while pending, "Approval: <summary>" after. */
export function approvalHeadline(a: ApprovalView, m: Markup): string {
  return `${m.bold(a.status === 'pending' ? 'Approval needed' : 'Approval')}: ${m.text(truncate(a.summary, 1000))}`;
}

/** The fallback (notification) text of an approval copy. */
export function approvalFallback(a: ApprovalView): string {
  return `${a.workflow}: ${a.status === 'pending' ? 'approval needed' : a.status}: ${a.summary}`;
}

/** Said on a copy whose addressee may no longer decide (the request was escalated). */
export const ESCALATED_AWAY = 'This request went to other approvers (escalated); nothing is needed from you.';

/** The first line of the answer to a click on an outdated copy. */
export const OUTDATED_HEADLINE = 'This message was out of date, so nothing was done.';

/**
 * The answer to a click on an outdated copy (src/views/outdated-view.ts): that nothing was done,
 * what happened since (who, when) and the state now; the copy itself is redrawn.
 */
export function outdatedLines(v: OutdatedView, m: Markup): string[] {
  const lines = [m.bold(m.text(OUTDATED_HEADLINE))];
  const changes = v.changes.map((c) => `${m.text(c.what)}${c.by ? ` by ${m.person(c.by)}` : ''} ${m.date(c.at)}`);
  if (v.earlier > 0) changes.unshift(`${v.earlier} earlier change${v.earlier === 1 ? '' : 's'}`);
  lines.push(changes.length > 0 ? `Since it was drawn: ${changes.join('; ')}.` : 'Since it was drawn, the run moved on.');
  lines.push(`Now: ${m.text(truncate(v.now, 500))}. The message shows the current state; act on it there if you still want to.`);
  return lines;
}

/** The same answer as plain text (notifications, fallbacks): people by principal, dates in UTC. */
export function outdatedPlain(v: OutdatedView): string {
  const plain: Markup = {
    text: (s) => s,
    bold: (s) => s,
    code: (s) => s,
    person: (p) => (p ? (p.name ?? `${p.platform}:${p.tenant}:${p.user}`) : 'someone'),
    date: (d) => `at ${d.toISOString().slice(11, 16)} UTC`,
  };
  return outdatedLines(v, plain).join(' ');
}
