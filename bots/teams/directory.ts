/**
 * Where Teams people and tenants can be reached, for deliveries made long after the request that
 * introduced them (migration 000010): each tenant's Bot Connector `serviceUrl`, and each user's
 * Bot Framework id and personal conversation with the bot.
 *
 * Filled from every verified activity (a message, a click, an installation), so an approver who
 * installed the app but never wrote to it is known, and one who did neither can still be reached
 * through `createConversation` with their AAD object id and the tenant's serviceUrl.
 */
import type pg from 'pg';
import type { Queryable } from '../../src/db/queryable.ts';

export interface TeamsContact {
  userId: string | null;
  name: string | null;
  conversationId: string | null;
  serviceUrl: string | null;
}

export interface TeamsUserSeen {
  tenant: string;
  serviceUrl: string;
  aadObjectId: string;
  userId: string;
  name: string | undefined;
  personalConversation: string | null;
}

/** Remembers the Bot Connector that serves a tenant (written only when it changed). */
export async function rememberTenant(q: Queryable, tenant: string, serviceUrl: string): Promise<void> {
  await q.query(
    `INSERT INTO tollgate.teams_tenants (tenant, service_url) VALUES ($1, $2)
     ON CONFLICT (tenant) DO UPDATE SET service_url = EXCLUDED.service_url, updated_at = now()
     WHERE teams_tenants.service_url IS DISTINCT FROM EXCLUDED.service_url`,
    [tenant, serviceUrl],
  );
}

/** Remembers what an activity says of a user (written only when something changed). */
export async function rememberUser(q: Queryable, s: TeamsUserSeen): Promise<void> {
  await q.query(
    `INSERT INTO tollgate.teams_users (tenant, aad_object_id, user_id, name, conversation_id, service_url) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (tenant, aad_object_id) DO UPDATE SET user_id = EXCLUDED.user_id, name = coalesce(EXCLUDED.name, teams_users.name),
       conversation_id = coalesce(EXCLUDED.conversation_id, teams_users.conversation_id), service_url = EXCLUDED.service_url, updated_at = now()
     WHERE (teams_users.user_id, teams_users.name, teams_users.conversation_id, teams_users.service_url)
       IS DISTINCT FROM (EXCLUDED.user_id, coalesce(EXCLUDED.name, teams_users.name), coalesce(EXCLUDED.conversation_id, teams_users.conversation_id), EXCLUDED.service_url)`,
    [s.tenant, s.aadObjectId, s.userId, s.name ?? null, s.personalConversation, s.serviceUrl],
  );
}

export async function findContact(q: Queryable, tenant: string, aadObjectId: string): Promise<TeamsContact | undefined> {
  const { rows } = await q.query<{ user_id: string | null; name: string | null; conversation_id: string | null; service_url: string | null }>(
    'SELECT user_id, name, conversation_id, service_url FROM tollgate.teams_users WHERE tenant = $1 AND aad_object_id = $2',
    [tenant, aadObjectId],
  );
  const r = rows[0];
  return r ? { userId: r.user_id, name: r.name, conversationId: r.conversation_id, serviceUrl: r.service_url } : undefined;
}

export async function tenantServiceUrl(q: Queryable, tenant: string): Promise<string | undefined> {
  const { rows } = await q.query<{ service_url: string }>('SELECT service_url FROM tollgate.teams_tenants WHERE tenant = $1', [tenant]);
  return rows[0]?.service_url;
}

/** Keeps the personal conversation created for a user, so the next card to them needs no new one. */
export async function rememberPersonalConversation(pool: pg.Pool, tenant: string, aadObjectId: string, conversationId: string, serviceUrl: string): Promise<void> {
  await pool.query(
    `INSERT INTO tollgate.teams_users (tenant, aad_object_id, conversation_id, service_url) VALUES ($1, $2, $3, $4)
     ON CONFLICT (tenant, aad_object_id) DO UPDATE SET conversation_id = EXCLUDED.conversation_id, service_url = EXCLUDED.service_url, updated_at = now()`,
    [tenant, aadObjectId, conversationId, serviceUrl],
  );
}
