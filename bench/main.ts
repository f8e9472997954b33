/**
 * `npm run bench`: every section measured in this one process, on one PostgreSQL (each section
 * in a database of its own), printed as one table. The server is an embedded PostgreSQL in a
 * temporary directory, unless BENCH_DATABASE_URL (or DATABASE_URL) names a maintenance database
 * on a server of yours, where the bench creates and drops `bench_*` databases.
 *
 * BENCH_MEASURE_MS (default 10000), BENCH_WARMUP_MS (2000) and BENCH_LATENCY_SAMPLES (300) bound
 * the run; the whole bench takes about a minute and a half.
 * BENCH_SECTIONS=graphile,tollgate runs only those sections.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ensureDatabase } from '../src/db/connect.ts';
import { startEmbeddedPostgres, withDatabase, type EmbeddedServer } from '../src/db/embedded.ts';
import { createLogger } from '../src/log.ts';
import { dbosSection } from './dbos.ts';
import { graphileSection } from './graphile.ts';
import { runtimeSection } from './runtime.ts';
import type { BenchContext, BenchSection, Figure } from './types.ts';

/** In order. Add a section here (e.g. the Slack adapter's) and its figures join the table. */
const SECTIONS: BenchSection[] = [graphileSection, runtimeSection, dbosSection];

/** Comparisons printed under the figures, when both sides were measured. */
const RATIOS: { label: string; num: string; den: string; goal?: string }[] = [
  { label: 'Tollgate / DBOS runs/s', num: 'tollgate.runs_per_s', den: 'dbos.runs_per_s', goal: 'goal ≥ 2×' },
  { label: 'Tollgate / DBOS p50 latency', num: 'tollgate.p50_ms', den: 'dbos.p50_ms', goal: 'goal < 1×' },
  { label: 'Tollgate / DBOS p99 latency', num: 'tollgate.p99_ms', den: 'dbos.p99_ms' },
  { label: 'Tollgate runs/s / graphile-worker jobs/s', num: 'tollgate.runs_per_s', den: 'graphile.jobs_per_s' },
];

function int(env: string | undefined, fallback: number): number {
  const n = env === undefined || env === '' ? fallback : Number(env);
  if (!Number.isFinite(n) || n < 0) throw new Error(`Bench setting ${env} is not a number >= 0.`);
  return n;
}

function fmt(f: Figure): string {
  const digits = f.value >= 100 ? 0 : f.value >= 10 ? 1 : 2;
  return `${f.value.toFixed(digits)} ${f.unit}`;
}

function table(rows: [string, string, string][]): string {
  const head: [string, string, string] = ['measure', 'value', 'note'];
  const all = [head, ...rows];
  const w = [0, 1, 2].map((i) => Math.max(...all.map((r) => r[i]?.length ?? 0)));
  const line = (r: [string, string, string]) => `| ${r[0].padEnd(w[0] as number)} | ${r[1].padStart(w[1] as number)} | ${r[2].padEnd(w[2] as number)} |`;
  return [line(head), `|${'-'.repeat((w[0] as number) + 2)}|${'-'.repeat((w[1] as number) + 1)}:|${'-'.repeat((w[2] as number) + 2)}|`, ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const env = process.env;
  const log = createLogger({ level: env.LOG_LEVEL ?? 'warn', format: 'json' });
  const only = env.BENCH_SECTIONS?.split(',').map((s) => s.trim());
  let server: EmbeddedServer | undefined;
  let dir: string | undefined;
  let maintenance = env.BENCH_DATABASE_URL ?? env.DATABASE_URL;
  if (!maintenance) {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-bench-'));
    await fs.chmod(dir, 0o755);
    server = await startEmbeddedPostgres({ dataDir: dir, port: 0, log });
    maintenance = server.url;
  }
  const pgVersion = await serverVersion(maintenance);
  const created: string[] = [];
  const ctx: BenchContext = {
    database: async (name) => {
      await dropDatabase(maintenance, name);
      await ensureDatabase(maintenance, name);
      created.push(name);
      return withDatabase(maintenance, name);
    },
    measureMs: int(env.BENCH_MEASURE_MS, 10_000),
    warmupMs: int(env.BENCH_WARMUP_MS, 2_000),
    latencySamples: int(env.BENCH_LATENCY_SAMPLES, 300),
    log,
  };
  const figures: Figure[] = [];
  const started = performance.now();
  try {
    for (const section of SECTIONS) {
      if (only && !only.includes(section.name)) continue;
      process.stderr.write(`bench: ${section.name} …\n`);
      figures.push(...(await section.run(ctx)));
    }
  } finally {
    for (const name of created) await dropDatabase(maintenance, name).catch(() => {});
    await server?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  }

  const byKey = new Map(figures.map((f) => [f.key, f]));
  const rows: [string, string, string][] = figures.map((f) => [f.label, fmt(f), f.note ?? '']);
  for (const r of RATIOS) {
    const a = byKey.get(r.num);
    const b = byKey.get(r.den);
    if (a && b) rows.push([r.label, `${(a.value / b.value).toFixed(2)}×`, r.goal ?? '']);
  }
  process.stdout.write(
    `\nTollgate bench: ${os.cpus().length} CPU(s), Node ${process.version}, PostgreSQL ${pgVersion}${server ? ' (embedded)' : ''}, ` +
      `${ctx.measureMs / 1000} s per throughput figure after ${ctx.warmupMs / 1000} s warm-up, ${ctx.latencySamples} latency samples; ` +
      `took ${((performance.now() - started) / 1000).toFixed(0)} s\n\n${table(rows)}\n`,
  );
}

async function dropDatabase(maintenance: string, name: string): Promise<void> {
  const c = new pg.Client({ connectionString: maintenance });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

async function serverVersion(maintenance: string): Promise<string> {
  const c = new pg.Client({ connectionString: maintenance });
  await c.connect();
  try {
    return (await c.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? '?';
  } finally {
    await c.end();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
