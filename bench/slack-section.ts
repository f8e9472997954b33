/**
 * The Slack adapter's figures in `npm run bench`: `runSlackBench()` (bench/slack.ts) on a database
 * of the bench's server. It is long (hundreds of signed requests through the real Bolt app, a
 * real worker and the fake Slack Web API), so it runs in the first round only; its figures carry
 * their own sample counts.
 */
import { runSlackBench } from './slack.ts';
import type { BenchSection, Figure } from './types.ts';

export const slackSection: BenchSection = {
  name: 'slack',
  setup: async (ctx) => {
    let done = false;
    return {
      measure: async (): Promise<Figure[]> => {
        if (done) return [];
        done = true;
        const rows = await runSlackBench({ databaseUrl: await ctx.database('bench_slack'), quiet: true });
        return rows.flatMap((r, i) => [
          { key: `slack.${i}.p50`, label: `${r.name}, p50`, value: r.p50Ms, unit: 'ms', note: `n=${r.n}` },
          { key: `slack.${i}.p99`, label: `${r.name}, p99`, value: r.p99Ms, unit: 'ms', note: `n=${r.n}` },
        ]);
      },
      teardown: async () => {},
    };
  },
};
