/**
 * People by name (`tollgate.people`, migration 000025): the display name a platform last gave for
 * a principal, its source and when it was written. The principal stays the identity; nothing here
 * is read to authorise. Written by the chat layer (src/chat/people.ts) and, for Teams, inside the
 * directory's own statement (teams-directory.ts `rememberSeen`); read by the console and the CLI.
 */
import type { Queryable } from '../queryable.ts';

export interface PersonRow {
  principal: string;
  display_name: string;
  source: string;
  updated_at: Date;
}

/**
 * Keeps `name` for `principal`. The row is written only when the name or its source changed,
 * unless `touch` (a lookup that confirmed it: its age is then the time since that lookup).
 */
export async function upsertPersonName(q: Queryable, p: { principal: string; name: string; source: string; touch?: boolean }): Promise<void> {
  await q.query(
    `INSERT INTO tollgate.people (principal, display_name, source) VALUES ($1, $2, $3)
     ON CONFLICT (principal) DO UPDATE SET display_name = EXCLUDED.display_name, source = EXCLUDED.source, updated_at = now()
     WHERE $4::boolean OR (people.display_name, people.source) IS DISTINCT FROM (EXCLUDED.display_name, EXCLUDED.source)`,
    [p.principal, p.name, p.source, p.touch === true],
  );
}

/** What is known of one principal, or undefined. */
export async function selectPerson(q: Queryable, principal: string): Promise<PersonRow | undefined> {
  const { rows } = await q.query<PersonRow>('SELECT principal, display_name, source, updated_at FROM tollgate.people WHERE principal = $1', [principal]);
  return rows[0];
}

/** The display names of these principals (those known), by principal. */
export async function selectNames(q: Queryable, principals: readonly string[]): Promise<Map<string, string>> {
  const unique = [...new Set(principals)];
  if (unique.length === 0) return new Map();
  const { rows } = await q.query<{ principal: string; display_name: string }>(
    'SELECT principal, display_name FROM tollgate.people WHERE principal = ANY($1::text[])',
    [unique],
  );
  return new Map(rows.map((r) => [r.principal, r.display_name]));
}
