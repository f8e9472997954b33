/**
 * Savepoints inside the caller's transaction: a step that may fail (a refused retry or cancel)
 * is undone alone, and the rest of the transaction (the click's delivery key, its explanation)
 * still commits. Names are the callers' constants, never input.
 */
import type { Queryable } from '../queryable.ts';

export async function savepoint(q: Queryable, name: string): Promise<void> {
  await q.query(`SAVEPOINT ${name}`);
}

export async function releaseSavepoint(q: Queryable, name: string): Promise<void> {
  await q.query(`RELEASE SAVEPOINT ${name}`);
}

export async function rollbackToSavepoint(q: Queryable, name: string): Promise<void> {
  await q.query(`ROLLBACK TO SAVEPOINT ${name}`);
}
