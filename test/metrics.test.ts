/**
 * `GET /metrics` (issue 10, "Metrics"): runs by workflow and status are kept as runs change (a
 * trigger, migration 000019_run_status_counts), so a scrape never reads tollgate.runs, however
 * many runs there are; the counts are exact at every scrape, under concurrent writers, and the
 * migration counts the runs that were there before it.
 *
 * The histograms moving after real runs are test/metrics-prom.test.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createHttpServer, type HttpServer } from '../src/server/http.ts';
import { createPool } from '../src/db/connect.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { poll } from './helpers/poll.ts';

let db: TestDb;
let server: HttpServer;
let url: string;
// The server's own pool of one connection: the statistics of every scrape come from one backend.
let scrapePool: pg.Pool;
beforeAll(async () => {
  db = await createTestDb();
  // Enough finished runs that counting them would be a real scan, and a few live ones.
  await db.pool.query(`
    INSERT INTO tollgate.runs (id, workflow, workflow_version, status, input, finished_at)
      SELECT 'run_' || i, 'w', 1, CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'succeeded' END, '{}', now() FROM generate_series(1, 30000) i;
    INSERT INTO tollgate.runs (id, workflow, workflow_version, status, input)
      SELECT 'live_' || i, 'w', 1, CASE WHEN i <= 3 THEN 'waiting' ELSE 'queued' END, '{}' FROM generate_series(1, 5) i;
    ANALYZE tollgate.runs;`);
  scrapePool = createPool(db.url, 1, testLogger());
  server = createHttpServer({ log: testLogger(), checks: { pool: scrapePool } });
  url = `http://127.0.0.1:${(await server.listen(0, '127.0.0.1')).port}`;
});
afterAll(async () => {
  await server.close();
  await scrapePool.end();
  await db.close();
});

async function scans(): Promise<{ seq: number; idx: number }> {
  const { rows } = await db.pool.query<{ seq: string; idx: string }>(
    `SELECT seq_scan::text AS seq, coalesce(idx_scan, 0)::text AS idx FROM pg_stat_user_tables WHERE schemaname = 'tollgate' AND relname = 'runs'`,
  );
  return { seq: Number(rows[0]?.seq), idx: Number(rows[0]?.idx) };
}

/**
 * The scrape backend's table statistics, reported now: a backend reports them when it goes idle,
 * and `pg_stat_force_next_flush()` makes it do so at once, before it answers, so once this
 * resolves every scan the scrapes made is counted.
 */
async function scrapeBackendReported(): Promise<void> {
  await scrapePool.query('SELECT pg_stat_force_next_flush()');
}

/** Waits until the table's scan counts stop moving (every other backend's report has arrived). */
async function settledScans(): Promise<{ seq: number; idx: number }> {
  const clients = await Promise.all(Array.from({ length: 20 }, () => db.pool.connect()));
  for (const c of clients) await c.query('SELECT pg_stat_force_next_flush()');
  for (const c of clients) c.release();
  // Two readings 250 ms apart that agree: the first check only takes the first reading.
  let last: { seq: number; idx: number } | undefined;
  return poll(
    async () => {
      const now = await scans();
      const settled = last !== undefined && now.seq === last.seq && now.idx === last.idx;
      last = now;
      return settled && now;
    },
    { message: 'the scan counts to stop moving', timeoutMs: 25_000, intervalMs: 250, retryErrors: false },
  );
}

const metrics = async () => (await fetch(`${url}/metrics`)).text();

describe('GET /metrics: runs by status', () => {
  it('serves exact counts by workflow and status without reading tollgate.runs, on any scrape', async () => {
    await scrapeBackendReported();
    const start = await settledScans();

    const texts: string[] = [];
    for (let i = 0; i < 5; i++) texts.push(await metrics());
    await db.pool.query(`INSERT INTO tollgate.runs (id, workflow, workflow_version, status, input) VALUES ('live_new', 'w', 1, 'queued', '{}')`);
    await db.pool.query(`UPDATE tollgate.runs SET status = 'succeeded', finished_at = now() WHERE id = 'live_5'`);
    texts.push(await metrics());
    await scrapeBackendReported();
    const after = await scans();

    // Six scrapes, and the runs table was neither scanned nor read through an index by any of them.
    expect(after).toEqual(start);
    expect(texts[0]).toContain('tollgate_runs{workflow="w",status="succeeded"} 27000');
    expect(texts[0]).toContain('tollgate_runs{workflow="w",status="failed"} 3000');
    expect(texts[0]).toContain('tollgate_runs{workflow="w",status="waiting"} 3');
    expect(texts[0]).toContain('tollgate_runs{workflow="w",status="queued"} 2');
    expect(texts[0]).toContain('tollgate_up 1');
    // A change shows at the next scrape: nothing is cached.
    expect(texts.at(-1)).toContain('tollgate_runs{workflow="w",status="queued"} 2');
    expect(texts.at(-1)).toContain('tollgate_runs{workflow="w",status="succeeded"} 27001');

    // The measure is live: one query of the scrape backend that reads runs is seen.
    await scrapePool.query(`SELECT count(*) FROM tollgate.runs WHERE status = 'queued'`);
    await scrapeBackendReported();
    const control = await scans();
    expect(control.seq + control.idx).toBeGreaterThan(after.seq + after.idx);
  }, 60_000);

  it('keeps the counts exact under concurrent status changes, single and grouped, from many sessions', async () => {
    await db.pool.query(`INSERT INTO tollgate.runs (id, workflow, workflow_version, status, input)
      SELECT 'c_' || i, CASE WHEN i % 2 = 0 THEN 'c-even' ELSE 'c-odd' END, 1, 'queued', '{}' FROM generate_series(1, 200) i`);
    const path_ = ['running', 'waiting', 'running', 'succeeded'];
    // Sixteen sessions at once: each moves its runs along one at a time, and also changes groups
    // of runs of both workflows in one statement (as a grouped write does), in no common order.
    await Promise.all(
      Array.from({ length: 16 }, async (_, s) => {
        const mine = Array.from({ length: 200 }, (_, i) => `c_${i + 1}`).filter((_, i) => i % 16 === s);
        for (const status of path_) {
          for (const id of mine.slice(0, mine.length >> 1)) await db.pool.query('UPDATE tollgate.runs SET status = $2 WHERE id = $1', [id, status]);
          await db.pool.query('UPDATE tollgate.runs SET status = $2 WHERE id = ANY($1)', [mine.slice(mine.length >> 1).reverse(), status]);
        }
      }),
    );
    await db.pool.query(`UPDATE tollgate.runs SET status = 'failed' WHERE id IN ('c_1', 'c_2', 'c_3')`);
    const counted = await db.pool.query(`SELECT workflow, status, count(*)::int AS n FROM tollgate.runs GROUP BY 1, 2 ORDER BY 1, 2`);
    const kept = await db.pool.query(
      `SELECT workflow, status, sum(n)::int AS n FROM tollgate.run_status_counts GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2`,
    );
    expect(kept.rows).toEqual(counted.rows);
    const text = await metrics();
    expect(text).toContain('tollgate_runs{workflow="c-even",status="succeeded"} 99');
    expect(text).toContain('tollgate_runs{workflow="c-odd",status="failed"} 2');
    // A status a run left shows 0 rather than vanishing.
    expect(text).toContain('tollgate_runs{workflow="c-even",status="queued"} 0');
    // A few hundred rows at most: 32 shards per workflow and status.
    const rows = await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM tollgate.run_status_counts');
    expect(Number(rows.rows[0]?.n)).toBeLessThanOrEqual(3 * 7 * 32);
  }, 60_000);

  it('counts, when migrated, the runs that were already there', async () => {
    const file = readFileSync(path.resolve(import.meta.dirname, '../migrations/000019_run_status_counts.sql'), 'utf8');
    const up = file.slice(0, file.indexOf('-- Down Migration'));
    const down = file.slice(file.indexOf('-- Down Migration'));
    const fresh = await createTestDb();
    try {
      await fresh.pool.query(down); // as before the migration
      await fresh.pool.query(`INSERT INTO tollgate.runs (id, workflow, workflow_version, status, input)
        SELECT 'old_' || i, 'old', 1, CASE WHEN i <= 7 THEN 'succeeded' ELSE 'waiting' END, '{}' FROM generate_series(1, 10) i`);
      await fresh.pool.query(up);
      await fresh.pool.query(`UPDATE tollgate.runs SET status = 'running' WHERE id = 'old_10'`);
      const { rows } = await fresh.pool.query(`SELECT status, sum(n)::int AS n FROM tollgate.run_status_counts WHERE workflow = 'old' GROUP BY 1 ORDER BY 1`);
      expect(rows).toEqual([
        { status: 'running', n: 1 },
        { status: 'succeeded', n: 7 },
        { status: 'waiting', n: 2 },
      ]);
    } finally {
      await fresh.close();
    }
  }, 60_000);
});
