/**
 * Named prepared statements for the hot path (once or twice per step): each connection parses and
 * plans them once instead of on every step. Only statements with fixed result columns: a prepared
 * `SELECT *` fails ("cached plan must not change result type") after a migration adds a column.
 * The name carries a version (`start_step_v3`): change it whenever the statement's text changes,
 * or a connection that prepared the old text would keep running it.
 */
import type pg from 'pg';

export function prepared(name: string, text: string, values: unknown[]): pg.QueryConfig {
  return { name: `tollgate_${name}`, text, values };
}
