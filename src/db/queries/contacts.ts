/**
 * The contacts table (`tollgate.contacts`) of the built-in tool `crm.upsert-contact`
 * (src/tools/crm-contacts.ts): unique on the call's idempotency key.
 */
import type { Queryable } from '../queryable.ts';

export interface NewContact {
  id: string;
  idempotencyKey: string;
  runId: string;
  name: string | null;
  email: string | null;
  company: string | null;
  phone: string | null;
  title: string | null;
  notes: string | null;
}

/**
 * Writes the contact, or finds the one this idempotency key already wrote (a re-run of the step);
 * `created` says which.
 */
export async function insertContactOnce(q: Queryable, c: NewContact): Promise<{ id: string; created: boolean }> {
  // `xmax = 0` is true only for the row this statement inserted, not for the one it found.
  const { rows } = await q.query<{ id: string; created: boolean }>(
    `INSERT INTO tollgate.contacts (id, idempotency_key, run_id, name, email, company, phone, title, notes)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key
       RETURNING id, (xmax = 0) AS created`,
    [c.id, c.idempotencyKey, c.runId, c.name, c.email, c.company, c.phone, c.title, c.notes],
  );
  return rows[0] as { id: string; created: boolean };
}
