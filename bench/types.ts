/**
 * What a benchmark section is: a named module that measures something on the bench's PostgreSQL
 * (a database of its own, on the same server as every other section) and returns figures.
 * `bench/main.ts` runs the sections in rounds and prints the figures (median of the rounds), and
 * the comparisons between them, as one table. To add a section (Slack, Teams, …), write `bench/<name>.ts` exporting a
 * `BenchSection` and list it in `bench/main.ts`.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { auditKeyFromEnv } from '../src/audit/key.ts';
import type { Logger } from '../src/common/log.ts';

/**
 * The audit key of every database the bench writes Tollgate events to: the chain is keyed
 * (src/audit/key.ts), so a pool without it cannot append. Random, since nothing verifies later.
 */
export const BENCH_AUDIT_KEY = auditKeyFromEnv(randomBytes(32).toString('hex'));

export interface BenchContext {
  /** A fresh database on the bench's server, created on first use; returns its URL. */
  database(name: string): Promise<string>;
  /** How long each throughput measurement runs. */
  readonly measureMs: number;
  /** Warm-up before each throughput measurement. */
  readonly warmupMs: number;
  /** How many sequential runs each latency measurement times. */
  readonly latencySamples: number;
  readonly log: Logger;
}

export interface Figure {
  /** Stable id, used by comparisons: e.g. `tollgate.runs_per_s`. */
  readonly key: string;
  readonly label: string;
  readonly value: number;
  readonly unit: string;
  /** How it was measured, in a few words. */
  readonly note?: string;
}

/**
 * A section is set up once, measured once per round (rounds of all sections interleave, so noise
 * from other processes on the machine falls on every system alike), then torn down.
 */
export interface BenchSection {
  readonly name: string;
  setup(ctx: BenchContext): Promise<SectionRunner>;
}

export interface SectionRunner {
  /** One measurement of every figure of this section. */
  measure(): Promise<Figure[]>;
  teardown(): Promise<void>;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

/** Runs `loops` concurrent copies of `once` for warm-up + measure; returns completions per second. */
export async function closedLoop(
  loops: number,
  warmupMs: number,
  measureMs: number,
  once: () => Promise<void>,
): Promise<{ perSecond: number; count: number; total: number }> {
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + measureMs;
  let count = 0;
  let total = 0;
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (performance.now() < end) {
        await once();
        total++;
        const t = performance.now();
        if (t >= measureFrom && t <= end) count++;
      }
    }),
  );
  return { perSecond: count / (measureMs / 1000), count, total };
}

/** Times `samples` sequential calls of `once` after a few untimed ones; returns ms, sorted. */
export async function sequentialLatency(samples: number, once: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < Math.min(20, samples); i++) await once();
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    await once();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b);
}

/**
 * CPU time spent by this process and by the PostgreSQL server's processes (backends, WAL writer,
 * …) between start and stop: what a run costs, whatever else the machine is doing. Reads
 * /proc, so PostgreSQL's share is only known for a server on this machine (else NaN).
 */
export async function cpuMeter(pool: pg.Pool): Promise<{ stop(): Promise<{ nodeMs: number; pgMs: number }> }> {
  const TICK_MS = 10; // USER_HZ is 100 on Linux
  const pgTicks = async (): Promise<Map<number, number>> => {
    const { rows } = await pool.query<{ pid: number }>('SELECT pid FROM pg_stat_activity');
    const out = new Map<number, number>();
    for (const { pid } of rows) {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
      if (!stat) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(pid, Number(fields[11]) + Number(fields[12])); // utime + stime
    }
    return out;
  };
  const node0 = process.cpuUsage();
  const pg0 = await pgTicks();
  return {
    async stop() {
      const node = process.cpuUsage(node0);
      const pg1 = await pgTicks();
      let ticks = 0;
      let seen = 0;
      // A backend started during the measurement (a pool opens most of its connections in the
      // warm-up) spent all its time in it: counting only those alive at both ends missed most of
      // a run's PostgreSQL CPU. A backend that ended meanwhile is still missed.
      for (const [pid, t] of pg1) {
        ticks += t - (pg0.get(pid) ?? 0);
        seen++;
      }
      return { nodeMs: (node.user + node.system) / 1000, pgMs: seen > 0 ? ticks * TICK_MS : Number.NaN };
    },
  };
}

/**
 * Server counters around a measurement: transactions committed in this database (each
 * autocommit statement is one, so about the statements sent) and WAL fsyncs on the whole server
 * (what a commit waits for). PostgreSQL publishes them up to a second late, hence the pauses.
 */
export async function dbCounters(pool: pg.Pool): Promise<{ stop(runs: number): Promise<{ xactsPerRun: number; walFsyncsPerRun: number }> }> {
  const settle = () => new Promise((r) => setTimeout(r, 1100));
  const read = async () => {
    const { rows } = await pool.query<{ xacts: string; fsyncs: string }>(
      `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()) AS xacts,
              (SELECT coalesce(sum(fsyncs), 0) FROM pg_stat_io WHERE object = 'wal') AS fsyncs`,
    );
    return { xacts: Number(rows[0]?.xacts), fsyncs: Number(rows[0]?.fsyncs) };
  };
  await settle();
  const before = await read();
  return {
    async stop(runs) {
      await settle();
      const after = await read();
      return { xactsPerRun: (after.xacts - before.xacts) / runs, walFsyncsPerRun: (after.fsyncs - before.fsyncs) / runs };
    },
  };
}

/**
 * Statements sent to PostgreSQL by every `pg` client of this process (Tollgate's pool, Graphile
 * Worker's, DBOS's: all use the same `pg` module), counted at `Client.prototype.query`, so each
 * system is measured the same way: one per round trip, BEGIN and COMMIT included, statements run
 * inside functions and triggers not.
 */
export function statementCounter(): { stop(): number } {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  let count = 0;
  proto.query = function (this: unknown, ...args: unknown[]) {
    count++;
    return original.apply(this, args);
  };
  return {
    stop() {
      proto.query = original;
      return count;
    },
  };
}

/**
 * The figures every durable-workflow system in the bench reports, measured the same way:
 * runs/s with `concurrent` runs in flight, sequential latency, CPU and database work per run.
 * `key` prefixes the figure keys (`tollgate`, `dbos`), `name` starts the labels.
 */
export async function measureWorkflowSystem(
  ctx: BenchContext,
  pool: pg.Pool,
  sys: { key: string; name: string; latencyLabel: string; concurrent: number; oneRun: () => Promise<void> },
): Promise<Figure[]> {
  const counters = await dbCounters(pool);
  const cpu = await cpuMeter(pool);
  const statements = statementCounter();
  const throughput = await closedLoop(sys.concurrent, ctx.warmupMs, ctx.measureMs, sys.oneRun);
  const sent = statements.stop();
  const used = await cpu.stop();
  const db = await counters.stop(throughput.total);
  const latency = await sequentialLatency(ctx.latencySamples, sys.oneRun);
  const { key, name } = sys;
  return [
    { key: `${key}.runs_per_s`, label: `${name} 5-step no-op runs/s (${sys.concurrent} concurrent)`, value: throughput.perSecond, unit: 'runs/s' },
    { key: `${key}.p50_ms`, label: `${name} one 5-step run, ${sys.latencyLabel}, p50`, value: percentile(latency, 50), unit: 'ms' },
    { key: `${key}.p99_ms`, label: `${name} one 5-step run, ${sys.latencyLabel}, p99`, value: percentile(latency, 99), unit: 'ms' },
    { key: `${key}.cpu_node_ms`, label: `${name} CPU per run in Node (throughput loop)`, value: used.nodeMs / throughput.total, unit: 'ms' },
    { key: `${key}.cpu_pg_ms`, label: `${name} CPU per run in PostgreSQL (throughput loop)`, value: used.pgMs / throughput.total, unit: 'ms' },
    {
      key: `${key}.statements`,
      label: `${name} statements sent per run`,
      value: sent / throughput.total,
      unit: '',
      note: 'round trips from Node, BEGIN/COMMIT included',
    },
    { key: `${key}.xacts`, label: `${name} transactions committed per run`, value: db.xactsPerRun, unit: '' },
    { key: `${key}.wal_fsyncs`, label: `${name} WAL fsyncs per run (whole server)`, value: db.walFsyncsPerRun, unit: '' },
  ];
}
