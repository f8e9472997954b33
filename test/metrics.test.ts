/**
 * `GET /metrics` (issue 9, "Bounded growth"): a scrape must not count the whole runs table. Live
 * statuses are counted through the status index on every scrape; finished ones at most once a
 * minute per process, in the background.
 */
import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServer } from '../src/server/http.ts';
import { metricsHandler } from '../src/server/metrics.ts';
import type pg from 'pg';
import { createPool } from '../src/db/connect.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';

let db: TestDb;
let server: HttpServer;
let url: string;
// The server's own pool of one connection: the statistics of every scrape come from one backend.
let scrapePool: pg.Pool;
beforeAll(async () => {
  db = await createTestDb();
  // Enough finished runs that counting them is a real scan, and a few live ones.
  await db.pool.query(`
    INSERT INTO tollgate.runs (id, workflow, workflow_version, status, input, finished_at)
      SELECT 'run_' || i, 'w', 1, CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'succeeded' END, '{}', now() FROM generate_series(1, 30000) i;
    INSERT INTO tollgate.runs (id, workflow, workflow_version, status, input)
      SELECT 'live_' || i, 'w', 1, CASE WHEN i <= 3 THEN 'waiting' ELSE 'queued' END, '{}' FROM generate_series(1, 5) i;
    ANALYZE tollgate.runs;`);
  // Statistics are reported by each backend when idle, up to seconds later: the connections that
  // migrated and seeded this database (some of their statements scan tollgate.runs) are asked to
  // report now, so their scans are not taken for a scrape's below.
  const clients = await Promise.all(Array.from({ length: 20 }, () => db.pool.connect()));
  for (const c of clients) await c.query('SELECT pg_stat_force_next_flush()');
  for (const c of clients) c.release();
  await settledScans();
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

/** Waits until the table's scan counts stop moving (every pending report has arrived). */
async function settledScans(): Promise<void> {
  let last = await scans();
  for (let i = 0; i < 100; i++) {
    await new Promise((res) => setTimeout(res, 250));
    const now = await scans();
    if (now.seq === last.seq && now.idx === last.idx) return;
    last = now;
  }
}

/**
 * A backend reports its table statistics when idle, up to about ten seconds later unless asked
 * sooner: wait until they show what is expected to have happened at least (`until`).
 */
async function scansWhen(until: (s: { seq: number; idx: number }) => boolean): Promise<{ seq: number; idx: number }> {
  await scrapePool.query('SELECT pg_stat_force_next_flush()'); // the scrape backend reports as soon as it is idle
  const deadline = Date.now() + 20_000;
  for (;;) {
    const now = await scans();
    if (until(now) || Date.now() > deadline) return now;
    await new Promise((res) => setTimeout(res, 100));
  }
}

describe('GET /metrics', () => {
  it('keeps the run counts by workflow and status without scanning the runs table on each scrape', async () => {
    const start = await scans();
    const first = await (await fetch(`${url}/metrics`)).text();
    expect(first).toContain('tollgate_runs{workflow="w",status="succeeded"} 27000');
    expect(first).toContain('tollgate_runs{workflow="w",status="failed"} 3000');
    expect(first).toContain('tollgate_runs{workflow="w",status="waiting"} 3');
    expect(first).toContain('tollgate_runs{workflow="w",status="queued"} 2');
    expect(first).toContain('tollgate_up 1');
    // The first scrape of a process counts the finished runs (one scan of the table); let its
    // statistics arrive so they are not counted below.
    const before = await scansWhen((s) => s.seq > start.seq);
    expect(before.seq).toBe(start.seq + 1);

    await db.pool.query(`INSERT INTO tollgate.runs (id, workflow, workflow_version, status, input) VALUES ('live_new', 'w', 1, 'queued', '{}')`);
    const texts: string[] = [];
    for (let i = 0; i < 5; i++) texts.push(await (await fetch(`${url}/metrics`)).text());
    // A live run shows at once.
    expect(texts.at(-1)).toContain('tollgate_runs{workflow="w",status="queued"} 3');
    expect(texts.at(-1)).toContain('tollgate_runs{workflow="w",status="succeeded"} 27000');
    // Each scrape reads the status index at least once; once the five have reported, none read the table whole.
    const after = await scansWhen((s) => s.idx >= before.idx + texts.length);
    expect(after.idx).toBeGreaterThanOrEqual(before.idx + texts.length);
    expect(after.seq - before.seq).toBe(0);
  });

  it('recounts finished runs in the background once the count is older than the refresh period, never in the scrape', async () => {
    let clock = 1_000_000;
    const handler = metricsHandler(db.pool, { finishedRefreshMs: 60_000, now: () => clock });
    const scrape = async () => {
      let body = '';
      const res = { writeHead: () => res, end: (b: string) => (body = b) } as unknown as http.ServerResponse;
      await handler({} as http.IncomingMessage, res);
      return body;
    };
    expect(await scrape()).toContain('status="succeeded"} 27000');
    await db.pool.query(`UPDATE tollgate.runs SET status = 'succeeded', finished_at = now() WHERE id = 'live_5'`);
    clock += 59_000;
    expect(await scrape()).toContain('status="succeeded"} 27000'); // within the period: the cached count
    clock += 2_000;
    const stale = await scrape(); // past it: served from the cache, recount started
    expect(stale).toContain('status="succeeded"} 27000');
    const deadline = Date.now() + 10_000;
    let fresh = stale;
    while (!fresh.includes('status="succeeded"} 27001') && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 50));
      fresh = await scrape();
    }
    expect(fresh).toContain('status="succeeded"} 27001');
  });
});
