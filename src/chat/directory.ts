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
