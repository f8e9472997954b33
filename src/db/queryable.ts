/**
 * What every query function of the data layer takes: a pool, a checked-out client or a client
 * inside a transaction. Callers choose the connection (and so the transaction); the query
 * modules (src/db/queries) never open one of their own.
 */
import type pg from 'pg';

export type Queryable = Pick<pg.ClientBase, 'query'>;
