/**
 * Where people can be reached later, for the platforms that keep a directory (today Teams: each
 * tenant's Bot Connector and each user's personal conversation, migration 000010). The adapter
 * says what an activity told it (`TeamsSeen`, carried by the intent as `remember`); the chat layer
 * records it in the transaction that records the request (intake.ts). The platform reads it back
 * when it delivers, through `TeamsDirectory`, never through a pool of its own.
 */
import type { Queryable } from '../db/queryable.ts';
import { findContact, rememberPersonalConversation, rememberSeen, tenantServiceUrl, type TeamsContact, type TeamsSeen } from '../db/queries/teams-directory.ts';

export type { TeamsContact, TeamsSeen, TeamsUserSeen } from '../db/queries/teams-directory.ts';

export interface TeamsDirectory {
  /** What is known of a Teams user (by tenant and AAD object id). */
  contact(tenant: string, aadObjectId: string): Promise<TeamsContact | undefined>;
  /** The Bot Connector that serves a tenant, once known. */
  tenantServiceUrl(tenant: string): Promise<string | undefined>;
  /** Keeps the personal conversation created for a user, so the next card to them needs no new one. */
  rememberPersonalConversation(tenant: string, aadObjectId: string, conversationId: string, serviceUrl: string): Promise<void>;
}

export function teamsDirectory(q: Queryable): TeamsDirectory {
  return {
    contact: (tenant, aadObjectId) => findContact(q, tenant, aadObjectId),
    tenantServiceUrl: (tenant) => tenantServiceUrl(q, tenant),
    rememberPersonalConversation: (tenant, aadObjectId, conversationId, serviceUrl) =>
      rememberPersonalConversation(q, tenant, aadObjectId, conversationId, serviceUrl),
  };
}

/** Records what an activity said of where people are (no-op without a note), inside the caller's transaction. */
export async function remember(q: Queryable, note: TeamsSeen | undefined): Promise<void> {
  if (note) await rememberSeen(q, note);
}

/**
 * Records the notes of many activities (a grouped write's), in order, inside the caller's
 * transaction: consecutive notes of one tenant and Bot Connector are merged into one statement,
 * which writes what they would have written one after another. A burst of one tenant's clicks is
 * then one statement, not one per click.
 */
export async function rememberAll(q: Queryable, notes: readonly TeamsSeen[]): Promise<void> {
  const merged: TeamsSeen[] = [];
  for (const n of notes) {
    const last = merged.at(-1);
    if (last && last.tenant === n.tenant && last.serviceUrl === n.serviceUrl) last.users.push(...n.users);
    else merged.push({ ...n, users: [...n.users] });
  }
  for (const n of merged) await rememberSeen(q, n);
}
