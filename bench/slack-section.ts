/**
 * The Slack adapter's figures in `npm run bench`: `runSlackBench()` (bench/slack.ts) on a database
 * of the bench's server. It is long (hundreds of signed requests through the real Bolt app, a
 * real worker and the fake Slack Web API), so it runs in the first round only; its figures carry
 * their own sample counts.
 */
import { runSlackBench, type BenchRow } from './slack.ts';
import type { BenchSection, Figure } from './types.ts';

/**
 * A section whose figures are latency rows from one long run against a database of its own
 * (`<name>.<i>.p50` / `.p99`, by the row's position): measured in the first round only.
 */
export function latencyRowsSection(name: string, run: (databaseUrl: string) => Promise<BenchRow[]>): BenchSection {
  return {
    name,
    setup: async (ctx) => {
      let done = false;
      return {
        measure: async (): Promise<Figure[]> => {
          if (done) return [];
          done = true;
          const rows = await run(await ctx.database(`bench_${name}`));
          return rows.flatMap((r, i) => [
            { key: `${name}.${i}.p50`, label: `${r.name}, p50`, value: r.p50Ms, unit: 'ms', note: `n=${r.n}` },
            { key: `${name}.${i}.p99`, label: `${r.name}, p99`, value: r.p99Ms, unit: 'ms', note: `n=${r.n}` },
          ]);
        },
        teardown: async () => {},
      };
    },
  };
}

export const slackSection = latencyRowsSection('slack', (databaseUrl) => runSlackBench({ databaseUrl, quiet: true }));
