/**
 * Delegations (`tollgate.delegations`, migration 000021): who lets whom decide in their place, for
 * which period. Every statement src/approvals/delegation.ts runs. A statement that creates or
 * revokes a delegation appends its event to the global audit chain (run_id NULL) in the same
 * statement. Nothing here decides who may delegate or decide; src/approvals does.
 */
import type { Queryable } from '../queryable.ts';
import { INSERT_EVENTS } from './events.ts';

export interface DelegationRow {
  id: string;
  delegator: string;
  delegate: string;
  starts_at: Date;
  ends_at: Date;
  created_by: string;
  via: string | null;
  os_user: string | null;
  created_at: Date;
  revoked_at: Date | null;
  revoked_by: string | null;
}

export interface NewDelegation {
  id: string;
  delegator: string;
  delegate: string;
  endsAt: Date;
  createdBy: string;
  via: string | null;
  osUser: string | null;
  /** The principal who asked, as the event's actor. */
  actor: unknown;
}

/**
 * Records a delegation starting now, with its `delegation.created` event; an earlier delegation
 * of the same delegator to the same delegate that has not ended is revoked by it (replaced), with
 * its `delegation.revoked` event.
 */
export async function insertDelegation(q: Queryable, d: NewDelegation): Promise<DelegationRow> {
  const { rows } = await q.query<DelegationRow>(
    `WITH old AS (
       UPDATE tollgate.delegations SET revoked_at = now(), revoked_by = $5
       WHERE delegator = $2 AND delegate = $3 AND revoked_at IS NULL AND ends_at > now() RETURNING id, delegator, delegate),
     d AS (
       INSERT INTO tollgate.delegations (id, delegator, delegate, ends_at, created_by, via, os_user)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *),
     e AS (
       ${INSERT_EVENTS}
       SELECT NULL::text, 'delegation.revoked', NULL::int, $8::jsonb, jsonb_build_object('delegationId', id, 'delegator', delegator, 'delegate', delegate,
         'reason', 'replaced', 'replacedBy', $1::text) FROM old
       UNION ALL
       SELECT NULL::text, 'delegation.created', NULL::int, $8::jsonb, jsonb_strip_nulls(jsonb_build_object('delegationId', id, 'delegator', delegator,
         'delegate', delegate, 'startsAt', starts_at, 'endsAt', ends_at, 'createdBy', created_by, 'via', via, 'osUser', os_user)) FROM d)
     SELECT * FROM d`,
    [d.id, d.delegator, d.delegate, d.endsAt, d.createdBy, d.via, d.osUser, JSON.stringify(d.actor)],
  );
  return rows[0] as DelegationRow;
}

/**
 * Revokes delegations that have not ended, with a `delegation.revoked` event each: by id, or
 * (id null) every one of `delegator`. Returns the rows revoked.
 */
export async function revokeDelegations(
  q: Queryable,
  r: { id: string | null; delegator: string | null; revokedBy: string; actor: unknown },
): Promise<DelegationRow[]> {
  const { rows } = await q.query<DelegationRow>(
    `WITH d AS (
       UPDATE tollgate.delegations SET revoked_at = now(), revoked_by = $3
       WHERE revoked_at IS NULL AND ends_at > now() AND ($1::text IS NULL OR id = $1) AND ($2::text IS NULL OR delegator = $2)
       RETURNING *),
     e AS (
       ${INSERT_EVENTS}
       SELECT NULL::text, 'delegation.revoked', NULL::int, $4::jsonb, jsonb_build_object('delegationId', id, 'delegator', delegator, 'delegate', delegate,
         'revokedBy', revoked_by) FROM d)
     SELECT * FROM d ORDER BY created_at`,
    [r.id, r.delegator, r.revokedBy, JSON.stringify(r.actor)],
  );
  return rows;
}

/** One delegation by id. */
export async function findDelegation(q: Queryable, id: string): Promise<DelegationRow | undefined> {
  const { rows } = await q.query<DelegationRow>('SELECT * FROM tollgate.delegations WHERE id = $1', [id]);
  return rows[0];
}

/** Delegations active now (by the database's clock) whose delegator is one of `delegators`. */
export async function selectActiveDelegationsFrom(q: Queryable, delegators: readonly string[]): Promise<DelegationRow[]> {
  if (delegators.length === 0) return [];
  const { rows } = await q.query<DelegationRow>(
    `SELECT * FROM tollgate.delegations
     WHERE delegator = ANY($1) AND revoked_at IS NULL AND starts_at <= now() AND ends_at > now()
     ORDER BY delegator, delegate, created_at`,
    [delegators],
  );
  return rows;
}

/** Delegations not revoked and not ended, oldest first; with `principal`, those it gave or received. */
export async function selectCurrentDelegations(q: Queryable, principal?: string): Promise<DelegationRow[]> {
  const { rows } = await q.query<DelegationRow>(
    `SELECT * FROM tollgate.delegations
     WHERE revoked_at IS NULL AND ends_at > now() AND ($1::text IS NULL OR delegator = $1 OR delegate = $1)
     ORDER BY created_at, id`,
    [principal ?? null],
  );
  return rows;
}
