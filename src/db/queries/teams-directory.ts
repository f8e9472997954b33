/**
 * The Teams directory (migration 000010): where Teams people and tenants can be reached, for
 * deliveries made long after the request that introduced them: each tenant's Bot Connector
 * `serviceUrl`, and each user's Bot Framework id and personal conversation with the bot.
 *
 * Filled from every verified activity (a message, a click, an installation), by the chat layer in
 * the transaction that records the activity's request, in one statement (`rememberSeen`); read by
 * the Teams platform when it delivers.
 */
import type { Queryable } from '../queryable.ts';

export interface TeamsContact {
  userId: string | null;
  name: string | null;
  conversationId: string | null;
  serviceUrl: string | null;
}

/** What one activity says of a user. */
export interface TeamsUserSeen {
  aadObjectId: string;
  userId: string;
  name: string | undefined;
  personalConversation: string | null;
}

/** What one activity says of its tenant and the users it names. */
export interface TeamsSeen {
  tenant: string;
  serviceUrl: string;
  users: TeamsUserSeen[];
}

/** One entry per user, merged in order as successive upserts would (a later id wins, a later null keeps the earlier name or conversation). */
function mergeUsers(users: readonly TeamsUserSeen[]): TeamsUserSeen[] {
  const byId = new Map<string, TeamsUserSeen>();
  for (const u of users) {
    const was = byId.get(u.aadObjectId);
    byId.set(u.aadObjectId, was ? { ...u, name: u.name ?? was.name, personalConversation: u.personalConversation ?? was.personalConversation } : u);
  }
  return [...byId.values()];
}

/**
 * Remembers the Bot Connector that serves a tenant and what the activity says of its users (and
 * their display names, in `tollgate.people`), in one statement; each row is written only when
 * something changed.
 *
 * A row that would not change is left out before the insert, not only by the `ON CONFLICT … WHERE`:
 * PostgreSQL locks the conflicting row before it evaluates that WHERE, so every activity of one
 * person would otherwise hold their row until its transaction commits, and a burst of one
 * approver's clicks (each deciding inline, in a transaction that starts with this) would commit
 * one at a time.
 */
export async function rememberSeen(q: Queryable, seen: TeamsSeen): Promise<void> {
  const users = mergeUsers(seen.users).map((u) => ({
    aad_object_id: u.aadObjectId,
    user_id: u.userId,
    name: u.name ?? null,
    conversation_id: u.personalConversation,
  }));
  await q.query(
    `WITH tenant AS (
       INSERT INTO tollgate.teams_tenants (tenant, service_url)
       SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM tollgate.teams_tenants t WHERE t.tenant = $1 AND t.service_url = $2)
       ON CONFLICT (tenant) DO UPDATE SET service_url = EXCLUDED.service_url, updated_at = now()
       WHERE teams_tenants.service_url IS DISTINCT FROM EXCLUDED.service_url
     ),
     -- People by name (migration 000025, src/db/queries/people.ts): Teams sends from.name on every activity.
     names AS (
       INSERT INTO tollgate.people (principal, display_name, source)
       SELECT 'teams:' || $1 || ':' || u.aad_object_id, btrim(u.name), 'teams'
       FROM jsonb_to_recordset($3::jsonb) AS u(aad_object_id text, name text)
       WHERE coalesce(btrim(u.name), '') <> ''
         AND NOT EXISTS (SELECT 1 FROM tollgate.people p WHERE p.principal = 'teams:' || $1 || ':' || u.aad_object_id
                         AND p.display_name = btrim(u.name) AND p.source = 'teams')
       ON CONFLICT (principal) DO UPDATE SET display_name = EXCLUDED.display_name, source = EXCLUDED.source, updated_at = now()
       WHERE (people.display_name, people.source) IS DISTINCT FROM (EXCLUDED.display_name, EXCLUDED.source)
     )
     INSERT INTO tollgate.teams_users (tenant, aad_object_id, user_id, name, conversation_id, service_url)
     SELECT $1, u.aad_object_id, u.user_id, u.name, u.conversation_id, $2
     FROM jsonb_to_recordset($3::jsonb) AS u(aad_object_id text, user_id text, name text, conversation_id text)
     WHERE NOT EXISTS (
       SELECT 1 FROM tollgate.teams_users t WHERE t.tenant = $1 AND t.aad_object_id = u.aad_object_id
          AND (t.user_id, t.name, t.conversation_id, t.service_url)
              IS NOT DISTINCT FROM (u.user_id, coalesce(u.name, t.name), coalesce(u.conversation_id, t.conversation_id), $2))
     ON CONFLICT (tenant, aad_object_id) DO UPDATE SET user_id = EXCLUDED.user_id, name = coalesce(EXCLUDED.name, teams_users.name),
       conversation_id = coalesce(EXCLUDED.conversation_id, teams_users.conversation_id), service_url = EXCLUDED.service_url, updated_at = now()
     WHERE (teams_users.user_id, teams_users.name, teams_users.conversation_id, teams_users.service_url)
       IS DISTINCT FROM (EXCLUDED.user_id, coalesce(EXCLUDED.name, teams_users.name), coalesce(EXCLUDED.conversation_id, teams_users.conversation_id), EXCLUDED.service_url)`,
    [seen.tenant, seen.serviceUrl, JSON.stringify(users)],
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
export async function rememberPersonalConversation(
  q: Queryable,
  tenant: string,
  aadObjectId: string,
  conversationId: string,
  serviceUrl: string,
): Promise<void> {
  await q.query(
    `INSERT INTO tollgate.teams_users (tenant, aad_object_id, conversation_id, service_url) VALUES ($1, $2, $3, $4)
     ON CONFLICT (tenant, aad_object_id) DO UPDATE SET conversation_id = EXCLUDED.conversation_id, service_url = EXCLUDED.service_url, updated_at = now()`,
    [tenant, aadObjectId, conversationId, serviceUrl],
  );
}
