/**
 * Delegation: an approver lets another principal decide in their place for a period
 * (`/tollgate delegate @someone until 2026-12-24`, the same words to the Teams bot, or
 * `tollgate delegate <principal> --until 2026-12-24`).
 *
 * General notes
 * - Who may delegate: anyone, for themselves only (the verified actor is the delegator; at the
 *   shell, the OS user or the principal `--as` names through cliDelegates). It matters only where
 *   the delegator is an approver.
 * - When an approval opens (or escalates), `withDelegates` adds to its resolved policy every
 *   delegate of its approvers whose delegation is active then, following chains A → B → C (a
 *   cycle guard, at most MAX_CHAIN links), with the approver whose place each may take. The
 *   delegator keeps the right: the delegate is added, not substituted. A delegate who is an
 *   approver in its own right decides as itself. What an approval lists is fixed when it opens:
 *   revoking (or the end of) a delegation changes the approvals that open afterwards.
 * - Who may decide, in whose place, and the ban on approving one's own request through a chain,
 *   are the one eligibility rule's (eligibility.ts). `decide` records the place taken
 *   (`on_behalf_of`) with the decision and in its `approval.decided` event.
 * - Refusals (TG_DELEGATION_INVALID): to oneself, to something that is not a principal, an end
 *   that has passed or is more than MAX_DELEGATION_DAYS away. Creating and revoking append
 *   `delegation.created` / `delegation.revoked` to the audit chain (src/db/queries/delegations.ts).
 */
import { TollgateError } from '../common/errors.ts';
import { newId } from '../common/ids.ts';
import { formatPrincipal, parsePrincipal, type Principal } from '../common/principals.ts';
import type { Queryable } from '../db/queryable.ts';
import type { DelegatedSeat, ResolvedPolicy } from '../db/queries/approvals.ts';
import {
  findDelegation,
  insertDelegation,
  revokeDelegations,
  selectActiveDelegationsFrom,
  selectCurrentDelegations,
  type DelegationRow,
} from '../db/queries/delegations.ts';

/** The longest a delegation may last, from now. */
export const MAX_DELEGATION_DAYS = 90;
/** The longest chain of delegations followed from an approver (A → B → C … ). */
export const MAX_CHAIN = 5;

const DAY_MS = 86_400_000;

export interface DelegationView {
  id: string;
  delegator: string;
  delegate: string;
  startsAt: string;
  endsAt: string;
  createdBy: string;
  via: string | null;
  osUser: string | null;
  revokedAt: string | null;
  revokedBy: string | null;
}

function toView(r: DelegationRow): DelegationView {
  return {
    id: r.id,
    delegator: r.delegator,
    delegate: r.delegate,
    startsAt: r.starts_at.toISOString(),
    endsAt: r.ends_at.toISOString(),
    createdBy: r.created_by,
    via: r.via,
    osUser: r.os_user,
    revokedAt: r.revoked_at?.toISOString() ?? null,
    revokedBy: r.revoked_by,
  };
}

/** "the end of 2026-12-24 (UTC)" for an end at midnight UTC, else the ISO time. */
export function describeEnd(endsAt: string | Date): string {
  const d = new Date(endsAt);
  if (d.getUTCHours() === 0 && d.getUTCMinutes() === 0 && d.getUTCSeconds() === 0 && d.getUTCMilliseconds() === 0) {
    return `the end of ${new Date(d.getTime() - DAY_MS).toISOString().slice(0, 10)} (UTC)`;
  }
  return d.toISOString();
}

/** One sentence: "slack:T1:U2 decides for slack:T1:U1 until the end of 2026-12-24 (UTC) (dlg_…)". */
export function describeDelegation(d: DelegationView): string {
  return `${d.delegate} decides for ${d.delegator} until ${describeEnd(d.endsAt)} (${d.id})`;
}

const invalid = (message: string, details: Record<string, unknown> = {}) =>
  new TollgateError('TG_DELEGATION_INVALID', `${message} (TG_DELEGATION_INVALID)`, details);

export interface NewDelegationRequest {
  /** Who delegates (the verified actor, or at the shell the principal acted as). */
  delegator: Principal;
  /** To whom: a principal as written (`slack:T1:U2`). */
  delegate: string;
  /** When it ends (exclusive). */
  endsAt: Date;
  via: string;
  osUser?: string | null;
}

/** Records a delegation starting now; refuses one to oneself, to a non-principal, ending in the past or too far away. */
export async function createDelegation(q: Queryable, r: NewDelegationRequest, now: Date = new Date()): Promise<DelegationView> {
  const delegator = formatPrincipal(r.delegator);
  let delegate: string;
  try {
    delegate = formatPrincipal(parsePrincipal(r.delegate));
  } catch {
    throw invalid(
      `"${r.delegate}" is not someone Tollgate can delegate to: mention them, or write their principal (slack:<team>:<user-id>, teams:<tenant-id>:<aad-object-id>).`,
    );
  }
  if (delegate === delegator) throw invalid(`You cannot delegate to yourself (${delegator}): name someone else.`);
  if (Number.isNaN(r.endsAt.getTime())) throw invalid('The end of the delegation is not a date: write it YYYY-MM-DD, e.g. 2026-12-24.');
  if (r.endsAt.getTime() <= now.getTime()) {
    throw invalid(`The delegation would end at ${describeEnd(r.endsAt)}, which has already passed: give a date from today on.`);
  }
  if (r.endsAt.getTime() - now.getTime() > MAX_DELEGATION_DAYS * DAY_MS) {
    const latest = new Date(now.getTime() + MAX_DELEGATION_DAYS * DAY_MS).toISOString().slice(0, 10);
    throw invalid(
      `A delegation lasts at most ${MAX_DELEGATION_DAYS} days; ${describeEnd(r.endsAt)} is further away. Give a date up to ${latest}, and delegate again later.`,
    );
  }
  const row = await insertDelegation(q, {
    id: newId('dlg'),
    delegator,
    delegate,
    endsAt: r.endsAt,
    createdBy: delegator,
    via: r.via,
    osUser: r.osUser ?? null,
    actor: r.delegator,
  });
  return toView(row);
}

/** Ends every delegation `actor` gave that has not ended yet ("delegate off"); returns them. */
export async function revokeMyDelegations(q: Queryable, actor: Principal): Promise<DelegationView[]> {
  const me = formatPrincipal(actor);
  return (await revokeDelegations(q, { id: null, delegator: me, revokedBy: me, actor })).map(toView);
}

/**
 * Ends one delegation by id. The delegator, the delegate (declining it) or an operator may; anyone
 * else is refused with TG_NOT_ALLOWED.
 */
export async function revokeDelegation(q: Queryable, id: string, actor: Principal, operator: boolean): Promise<DelegationView> {
  const me = formatPrincipal(actor);
  const row = await findDelegation(q, id);
  if (!row) throw new TollgateError('TG_DELEGATION_NOT_FOUND', `No delegation with id "${id}". \`tollgate delegate list\` lists them.`, { id });
  if (!operator && me !== row.delegator && me !== row.delegate) {
    throw new TollgateError('TG_NOT_ALLOWED', `${me} may not revoke ${id}: only ${row.delegator} (who delegated), ${row.delegate} or an operator may.`, { id });
  }
  if (row.revoked_at || row.ends_at.getTime() <= Date.now()) {
    throw new TollgateError('TG_DELEGATION_NOT_FOUND', `${id} has already ${row.revoked_at ? 'been revoked' : 'ended'}; nothing changed.`, { id });
  }
  const [revoked] = await revokeDelegations(q, { id, delegator: null, revokedBy: me, actor });
  return toView(revoked ?? row);
}

/** Delegations not revoked and not ended (with `principal`: those it gave or received). */
export async function listDelegations(q: Queryable, principal?: Principal): Promise<DelegationView[]> {
  return (await selectCurrentDelegations(q, principal ? formatPrincipal(principal) : undefined)).map(toView);
}

/**
 * The policy with the delegates of its approvers, as delegations stand now: chains followed from
 * each approver (each link an active delegation), a principal never twice in a chain, at most
 * MAX_CHAIN links. A delegate who is an approver in its own right is not listed as a delegate
 * (it decides as itself), but chains go on through it.
 */
export async function withDelegates(q: Queryable, policy: ResolvedPolicy): Promise<ResolvedPolicy> {
  const approvers = new Set(policy.approvers);
  const seats: DelegatedSeat[] = [];
  let frontier: string[][] = policy.approvers.map((a) => [a]);
  for (let depth = 0; depth < MAX_CHAIN && frontier.length > 0; depth++) {
    const ends = [...new Set(frontier.map((c) => c[c.length - 1] as string))];
    const links = await selectActiveDelegationsFrom(q, ends);
    const next: string[][] = [];
    for (const chain of frontier) {
      const last = chain[chain.length - 1] as string;
      for (const l of links) {
        if (l.delegator !== last || chain.includes(l.delegate)) continue; // the cycle guard
        const longer = [...chain, l.delegate];
        next.push(longer);
        if (!approvers.has(l.delegate)) seats.push({ delegate: l.delegate, onBehalfOf: chain[0] as string, chain: longer });
      }
    }
    frontier = next;
  }
  if (seats.length === 0) return policy;
  const seen = new Set<string>();
  const unique = seats.filter((s) => {
    const k = s.chain.join('>');
    return seen.has(k) ? false : (seen.add(k), true);
  });
  return { ...policy, delegations: unique };
}

/** The delegates of a policy, each once, in the order found. */
export function delegatesOf(p: Pick<ResolvedPolicy, 'delegations'>): string[] {
  return [...new Set((p.delegations ?? []).map((s) => s.delegate))];
}

/** For people: "; slack:T1:U2 for slack:T1:U1 (delegated)", or "" when nobody delegated. */
export function describeDelegates(p: Pick<ResolvedPolicy, 'delegations'>): string {
  const pairs = [...new Set((p.delegations ?? []).map((s) => `${s.delegate} for ${s.onBehalfOf}`))];
  return pairs.length === 0 ? '' : `; delegates: ${pairs.join(', ')}`;
}
