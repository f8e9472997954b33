/**
 * Where a run's PostgreSQL time goes, statement by statement: runs `BENCH_RUNS` (default 2000)
 * five-step runs of one system (`tollgate` or `dbos`, 10 concurrent, after 200 untimed) and prints
 * `pg_stat_statements` for its database divided by the runs: calls, execution time and rows per
 * run, top-level statements and those run inside functions and triggers (`nested`).
 *
 *   BENCH_DATABASE_URL=postgres://…/postgres npx tsx bench/statements.ts tollgate
 *
 * The server must load the extension (`shared_preload_libraries=pg_stat_statements`, and
 * `pg_stat_statements.track=all` for the nested rows); the embedded server of `npm run bench`
 * does not, so this is a tool of its own, not a section. Figures are counts and server time, so
 * they hold on a shared machine better than throughput does.
 */
import pg from 'pg';
import { ensureDatabase } from '../src/db/connect.ts';
import { withDatabase } from '../src/db/embedded.ts';
import { createLogger } from '../src/common/log.ts';
import { setupDbos } from './dbos.ts';
import { setupTollgate } from './runtime.ts';
import { cpuMeter, type BenchContext } from './types.ts';

async function main(): Promise<void> {
  const system = process.argv[2] ?? 'tollgate';
  const runs = Number(process.env.BENCH_RUNS ?? 2000);
  const maintenance = process.env.BENCH_DATABASE_URL;
  if (!maintenance) throw new Error('Set BENCH_DATABASE_URL to a maintenance database of a server that loads pg_stat_statements.');
  const log = createLogger({ level: process.env.LOG_LEVEL ?? 'warn', format: 'json' });
  const name = `bench_stmt_${system}`;
  const admin = new pg.Client({ connectionString: maintenance });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await ensureDatabase(maintenance, name);
  const url = withDatabase(maintenance, name);
  const ctx: BenchContext = { database: () => Promise.resolve(url), measureMs: 0, warmupMs: 0, latencySamples: 0, log };
  const sys = system === 'dbos' ? await setupDbos(ctx, url) : await setupTollgate(ctx, url);
  try {
    await countedRuns(200, sys.oneRun);
    const stats = new pg.Client({ connectionString: url });
    await stats.connect();
    await stats.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await stats.query('SELECT pg_stat_statements_reset()');
    const cpu = await cpuMeter(sys.pool);
    const t0 = performance.now();
    await countedRuns(runs, sys.oneRun);
    const wall = performance.now() - t0;
    const used = await cpu.stop();
    const { rows } = await stats.query<{ toplevel: boolean; calls: string; ms: number; rows: string; query: string }>(
      `SELECT toplevel, sum(calls)::bigint AS calls, sum(total_exec_time + total_plan_time) AS ms, sum(rows)::bigint AS rows, min(query) AS query
         FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%pg_stat_activity%'
        GROUP BY toplevel, queryid ORDER BY ms DESC`,
    );
    await stats.end();
    const top = rows.filter((r) => r.toplevel);
    const per = (x: number) => (x / runs).toFixed(3);
    const out = [
      `${system}: ${runs} runs in ${(wall / 1000).toFixed(1)} s (${((runs / wall) * 1000).toFixed(0)} runs/s on this machine now); ` +
        `PostgreSQL CPU ${per(used.pgMs)} ms/run, Node CPU ${per(used.nodeMs)} ms/run; ` +
        `top-level statements ${per(top.reduce((a, r) => a + Number(r.calls), 0))}/run, their planning and execution ${per(top.reduce((a, r) => a + r.ms, 0))} ms/run`,
      '| level | calls/run | plan+exec ms/run | rows/run | statement |',
      '|---|---:|---:|---:|---|',
      ...rows
        .filter((r) => Number(r.calls) / runs >= 0.05)
        .map(
          (r) =>
            `| ${r.toplevel ? 'top' : 'nested'} | ${per(Number(r.calls))} | ${per(r.ms)} | ${per(Number(r.rows))} | ${r.query.replace(/\s+/g, ' ').slice(0, 150)} |`,
        ),
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await sys.teardown();
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {});
    await admin.end();
  }
}

/** `n` runs of `once`, 10 at a time. */
async function countedRuns(n: number, once: () => Promise<void>): Promise<void> {
  let left = n;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (left-- > 0) await once();
    }),
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
