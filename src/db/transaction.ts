/**
 * Runs `fn` in a transaction on a client of its own: COMMIT when it resolves, ROLLBACK when it
 * throws. `begin` may ask for more than the default, e.g. `BEGIN ISOLATION LEVEL REPEATABLE READ
 * READ ONLY` for one consistent snapshot across several reads.
 */
import type pg from 'pg';
import type { Queryable } from './queryable.ts';

export async function withTransaction<T>(pool: pg.Pool, fn: (q: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query(begin);
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}

/** PostgreSQL's codes for "this transaction lost a lock race and was rolled back; run it again". */
const LOST_RACE = new Set(['40P01' /* deadlock_detected */, '40001' /* serialization_failure */]);

/**
 * `withTransaction`, run again (up to `attempts` times in all) when PostgreSQL picks it as the
 * victim of a deadlock. A person's change to a run (cancel, retry, a decision) locks the run and
 * then appends an event, whose trigger locks the run's audit chain; an executor advancing the same
 * run may hold those two the other way round for a moment. PostgreSQL breaks the cycle by rolling
 * one back, and the right answer to the person is to try again, not an error. Only for `fn`s whose
 * every effect is in the transaction (nothing sent elsewhere), since it may run more than once.
 */
export async function withRetriedTransaction<T>(pool: pg.Pool, fn: (q: pg.PoolClient) => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await withTransaction(pool, fn);
    } catch (e) {
      if (attempt >= attempts || !LOST_RACE.has((e as { code?: string }).code ?? '')) throw e;
    }
  }
}

/**
 * Runs `fn` in a transaction on `q`, a connection the caller holds for longer (the executor's
 * locked one): COMMIT when it resolves, ROLLBACK when it throws. The connection stays the caller's.
 */
export async function inTransaction<T>(q: Queryable, fn: () => Promise<T>): Promise<T> {
  await q.query('BEGIN');
  try {
    const out = await fn();
    await q.query('COMMIT');
    return out;
  } catch (e) {
    await q.query('ROLLBACK').catch(() => {});
    throw e;
  }
}
