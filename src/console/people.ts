/**
 * People by name in the console (issue 22, item 5): the views a page shows are named from the
 * directory (`tollgate.people`) just before rendering, and `person` draws a person as their name
 * with their platform ("Ada Lovelace (Slack)"), the principal kept in `data-principal` and a
 * tooltip; while no platform has named them, as the principal itself. A decision shows the name it
 * was made under. Names are for reading only: who may do what is decided on principals elsewhere.
 */
import type { Queryable } from '../db/queryable.ts';
import { formatPrincipal, parsePrincipal, type Principal } from '../common/principals.ts';
import { namesOf } from '../chat/people.ts';
import type { ApprovalView } from '../views/approval-view.ts';
import { platformLabel, withName } from '../views/people.ts';
import type { RunView } from '../views/run-view.ts';
import type { TimelineView } from '../views/timeline-view.ts';
import type { ConsoleViewer } from './auth.ts';
import { html, type Html } from './html.ts';

/** A person as the console writes them. */
export function person(p: Principal | string | null | undefined): Html {
  if (!p) return html`<span class="muted">—</span>`;
  let who: Principal | undefined;
  try {
    who = typeof p === 'string' ? parsePrincipal(p) : p;
  } catch {
    return html`<code>${typeof p === 'string' ? p : formatPrincipal(p)}</code>`; // not a principal (an old or foreign row): shown as stored
  }
  const principal = formatPrincipal(who);
  if (!who.name) return html`<span class="person" data-principal="${principal}">${principal}</span>`;
  return html`<span class="person" data-principal="${principal}" title="${principal}"><strong>${who.name}</strong> <span class="muted">(${platformLabel(who.platform)})</span></span>`;
}

/** Names the approvals' requesters from the directory, and deciders who had no name when they decided. */
export async function nameApprovals(q: Queryable, list: ApprovalView[]): Promise<ApprovalView[]> {
  const names = await namesOf(q, [
    ...list.flatMap((a) => (a.requestedBy ? [formatPrincipal(a.requestedBy)] : [])),
    ...list.flatMap((a) => a.decisions.map((d) => d.principal)),
  ]);
  return list.map((a) => nameApproval(a, names));
}

function nameApproval(a: ApprovalView, names: ReadonlyMap<string, string>): ApprovalView {
  return {
    ...a,
    requestedBy: withName(a.requestedBy, names),
    decisions: a.decisions.map((d) => ({ ...d, by: d.by?.name ? d.by : withName(d.by, names) })),
  };
}

export async function nameRuns(q: Queryable, runs: RunView[]): Promise<RunView[]> {
  const names = await namesOf(
    q,
    runs.flatMap((r) => (r.requester ? [formatPrincipal(r.requester)] : [])),
  );
  return runs.map((r) => ({ ...r, requester: withName(r.requester, names) }));
}

/** A run's timeline with its requester, approvals and events' actors named. */
export async function nameTimeline(q: Queryable, t: TimelineView): Promise<TimelineView & { names: ReadonlyMap<string, string> }> {
  const { run } = t;
  const names = await namesOf(q, [
    ...(run.requester ? [formatPrincipal(run.requester)] : []),
    ...run.approvals.flatMap((a) => [...(a.requestedBy ? [formatPrincipal(a.requestedBy)] : []), ...a.decisions.map((d) => d.principal)]),
    ...t.events.flatMap((e) => (e.actor ? [e.actor] : [])),
  ]);
  const named = { ...run, requester: withName(run.requester, names), approvals: run.approvals.map((a) => nameApproval(a, names)) };
  return { ...t, run: named, names };
}

/** A principal string (an event's actor) named from `names`. */
export function namedString(actor: string | null, names: ReadonlyMap<string, string> | undefined): Principal | string | null {
  if (!actor) return null;
  const name = names?.get(actor);
  if (!name) return actor;
  try {
    return { ...parsePrincipal(actor), name };
  } catch {
    return actor;
  }
}

/** The signed-in person, named from the directory (for the page's header). */
export async function namedViewer(q: Queryable, viewer: ConsoleViewer): Promise<ConsoleViewer> {
  if (!viewer.principal) return viewer;
  const names = await namesOf(q, [formatPrincipal(viewer.principal)]);
  return { ...viewer, principal: withName(viewer.principal, names) };
}
