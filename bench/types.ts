/**
 * What a benchmark section is: a named module that measures something on the bench's PostgreSQL
 * (a database of its own, on the same server as every other section) and returns figures.
 * `bench/main.ts` runs the sections in order and prints them, and the comparisons between them,
 * as one table. To add a section (Slack, Teams, …), write `bench/<name>.ts` exporting a
 * `BenchSection` and list it in `bench/main.ts`.
 */
import type { Logger } from '../src/log.ts';

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

export interface BenchSection {
  readonly name: string;
  run(ctx: BenchContext): Promise<Figure[]>;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

/** Runs `loops` concurrent copies of `once` for warm-up + measure; returns completions per second. */
export async function closedLoop(loops: number, warmupMs: number, measureMs: number, once: () => Promise<void>): Promise<{ perSecond: number; count: number }> {
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + measureMs;
  let count = 0;
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (performance.now() < end) {
        await once();
        const t = performance.now();
        if (t >= measureFrom && t <= end) count++;
      }
    }),
  );
  return { perSecond: count / (measureMs / 1000), count };
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
