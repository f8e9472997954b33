/** The readiness probe's question to the database (`GET /readyz`, src/server/http.ts). */
import type { Queryable } from '../queryable.ts';

/** Resolves when the database answers a query; rejects with the driver's error otherwise. */
export async function pingDatabase(q: Queryable): Promise<void> {
  await q.query('SELECT 1');
}
