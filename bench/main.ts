/**
 * `npm run bench`: every section measured in this one process, on one PostgreSQL (each section
 * in a database of its own), printed as one table. The server is an embedded PostgreSQL in a
 * temporary directory, unless BENCH_DATABASE_URL (or DATABASE_URL) names a maintenance database
 * on a server of yours, where the bench creates and drops `bench_*` databases.
 *
 * Sections run in BENCH_ROUNDS rounds (default 3), interleaved, and each figure printed is the
 * median of its rounds, with the range beside it: the machine may be shared, and interleaving
 * spreads other processes' noise over every system alike. BENCH_MEASURE_MS (default 5000),
 * BENCH_WARMUP_MS (1000) and BENCH_LATENCY_SAMPLES (200) bound each round; the soak section
 * (10,000 runs a round, bench/soak.ts) adds one to two minutes a round to the rest.
 * BENCH_SECTIONS=graphile,tollgate runs only those sections.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ensureDatabase } from '../src/db/connect.ts';
import { startEmbeddedPostgres, withDatabase, type EmbeddedServer } from '../src/db/embedded.ts';
import { createLogger } from '../src/common/log.ts';
import { dbosSection } from './dbos.ts';
import { graphileSection } from './graphile.ts';
import { runtimeSection } from './runtime.ts';
import { slackSection } from './slack-section.ts';
import { teamsSection } from './teams.ts';
import { cliSection } from './cli.ts';
import { soakSection } from './soak.ts';
import type { BenchContext, BenchSection, Figure, SectionRunner } from './types.ts';

/** In order. Add a section here (e.g. the Slack adapter's) and its figures join the table. */
const SECTIONS: BenchSection[] = [graphileSection, runtimeSection, dbosSection, slackSection, teamsSection, cliSection, soakSection];

/** Comparisons printed under the figures, when both sides were measured. */
const RATIOS: { label: string; num: string; den: string; goal?: string }[] = [
  { label: 'Tollgate / DBOS runs/s', num: 'tollgate.runs_per_s', den: 'dbos.runs_per_s', goal: 'goal ≥ 2×' },
  { label: 'Tollgate / DBOS p50 latency', num: 'tollgate.p50_ms', den: 'dbos.p50_ms', goal: 'goal ≤ 0.6×' },
  { label: 'Tollgate / DBOS p99 latency', num: 'tollgate.p99_ms', den: 'dbos.p99_ms' },
  { label: 'Tollgate / DBOS Node CPU per run', num: 'tollgate.cpu_node_ms', den: 'dbos.cpu_node_ms' },
  { label: 'Tollgate / DBOS PostgreSQL CPU per run', num: 'tollgate.cpu_pg_ms', den: 'dbos.cpu_pg_ms' },
  { label: 'Tollgate / DBOS statements per run', num: 'tollgate.statements', den: 'dbos.statements' },
  { label: 'Tollgate / DBOS WAL fsyncs per run', num: 'tollgate.wal_fsyncs', den: 'dbos.wal_fsyncs' },
  { label: 'Tollgate runs/s / graphile-worker jobs/s', num: 'tollgate.runs_per_s', den: 'graphile.jobs_per_s' },
  // bench/slack.ts rows 1 (/tollgate run), 2 (Approve), 4 (Retry) over row 0 (the floor); bench/teams.ts row 1 over its row 0.
  { label: 'ack p99, 200 concurrent /tollgate run / floor', num: 'slack.1.p99', den: 'slack.0.p99', goal: 'goal ≤ 1.5×' },
  { label: 'ack p99, 200 concurrent Approve clicks / floor', num: 'slack.2.p99', den: 'slack.0.p99', goal: 'goal ≤ 1.5×' },
  { label: 'ack p99, 200 concurrent Retry clicks / floor', num: 'slack.4.p99', den: 'slack.0.p99', goal: 'goal ≤ 1.5×' },
  { label: 'ack p99, 200 concurrent Teams invokes / floor', num: 'teams.1.p99', den: 'teams.0.p99', goal: 'goal ≤ 1.5×' },
];

function int(env: string | undefined, fallback: number): number {
  const n = env === undefined || env === '' ? fallback : Number(env);
  if (!Number.isFinite(n) || n < 0) throw new Error(`Bench setting ${env} is not a number >= 0.`);
  return n;
}

function fmt(value: number): string {
  return value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2);
}

function table(rows: [string, string, string][]): string {
  const head: [string, string, string] = ['measure', 'value', 'note'];
  const all = [head, ...rows];
  const w = [0, 1, 2].map((i) => Math.max(...all.map((r) => r[i]?.length ?? 0)));
  const line = (r: [string, string, string]) => `| ${r[0].padEnd(w[0] as number)} | ${r[1].padStart(w[1] as number)} | ${r[2].padEnd(w[2] as number)} |`;
  return [line(head), `|${'-'.repeat((w[0] as number) + 2)}|${'-'.repeat((w[1] as number) + 1)}:|${'-'.repeat((w[2] as number) + 2)}|`, ...rows.map(line)].join(
    '\n',
  );
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
    measureMs: int(env.BENCH_MEASURE_MS, 5_000),
    warmupMs: int(env.BENCH_WARMUP_MS, 1_000),
    latencySamples: int(env.BENCH_LATENCY_SAMPLES, 200),
    log,
  };
  const rounds = Math.max(1, int(env.BENCH_ROUNDS, 3));
  const samples = new Map<string, { figure: Figure; values: number[] }>();
  const started = performance.now();
  const runners: { name: string; runner: SectionRunner }[] = [];
  try {
    for (const section of SECTIONS) {
      if (only && !only.includes(section.name)) continue;
      runners.push({ name: section.name, runner: await section.setup(ctx) });
    }
    for (let round = 1; round <= rounds; round++) {
      for (const { name, runner } of runners) {
        process.stderr.write(`bench: round ${round}/${rounds}: ${name} …\n`);
        for (const f of await runner.measure()) {
          const s = samples.get(f.key) ?? { figure: f, values: [] };
          s.values.push(f.value);
          samples.set(f.key, s);
        }
      }
    }
  } finally {
    for (const { runner } of runners.reverse()) await runner.teardown().catch((e: unknown) => log.warn({ err: e }, 'bench teardown'));
    for (const name of created) await dropDatabase(maintenance, name).catch(() => {});
    await server?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  }

  const median = (v: number[]) => {
    const s = [...v].sort((a, b) => a - b);
    const mid = s.length / 2;
    return s.length % 2 ? (s[Math.floor(mid)] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  };
  const byKey = new Map<string, number>();
  const rows: [string, string, string][] = [];
  for (const { figure, values } of samples.values()) {
    const m = median(values);
    byKey.set(figure.key, m);
    const range = values.length > 1 ? `range ${fmt(Math.min(...values))}–${fmt(Math.max(...values))}` : '';
    rows.push([figure.label, `${fmt(m)} ${figure.unit}`.trim(), [range, figure.note].filter(Boolean).join('; ')]);
  }
  for (const r of RATIOS) {
    const a = byKey.get(r.num);
    const b = byKey.get(r.den);
    if (a !== undefined && b !== undefined) rows.push([r.label, `${(a / b).toFixed(2)}×`, r.goal ?? '']);
  }
  process.stdout.write(
    `\nTollgate bench: ${os.cpus().length} CPU(s), Node ${process.version}, PostgreSQL ${pgVersion}${server ? ' (embedded)' : ''}; ` +
      `median of ${rounds} interleaved round(s), each ${ctx.warmupMs / 1000} s warm-up + ${ctx.measureMs / 1000} s per throughput figure ` +
      `and ${ctx.latencySamples} sequential runs for latency; took ${((performance.now() - started) / 1000).toFixed(0)} s\n\n${table(rows)}\n`,
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
