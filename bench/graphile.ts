/**
 * Raw Graphile Worker: how many no-op jobs per second one runner (concurrency 10, the default
 * WORKER_CONCURRENCY) completes from a full queue. The ceiling under anything built on it.
 */
import { EventEmitter } from 'node:events';
import { run, runMigrations, type WorkerEvents } from 'graphile-worker';
import { createPool } from '../src/db/connect.ts';
import { graphileLogger } from '../src/worker/worker.ts';
import type { BenchSection } from './types.ts';

export const CONCURRENCY = 10;

export const graphileSection: BenchSection = {
  name: 'graphile',
  async setup(ctx) {
    const url = await ctx.database('bench_graphile');
    const pool = createPool(url, CONCURRENCY + 5, ctx.log);
    const logger = graphileLogger(ctx.log);
    await runMigrations({ pgPool: pool, logger });
    // Enough jobs that the queue never runs dry while measuring (well above the 5000+ jobs/s a fast machine does).
    const jobsPerRound = Math.ceil(((ctx.warmupMs + ctx.measureMs) / 1000) * 20000);
    return {
      async measure() {
        await pool.query('DELETE FROM graphile_worker._private_jobs');
        await pool.query(
          `SELECT count(*) FROM graphile_worker.add_jobs(
             (SELECT array_agg(('noop', '{}'::json, null, null, null, null, null, null)::graphile_worker.job_spec) FROM generate_series(1, $1::int)))`,
          [jobsPerRound],
        );
        let done = 0;
        const events = new EventEmitter() as WorkerEvents;
        events.on('job:success', () => {
          done++;
        });
        const runner = await run({
          pgPool: pool,
          taskList: { noop: async () => {} },
          concurrency: CONCURRENCY,
          noHandleSignals: true,
          pollInterval: 1000,
          logger,
          events,
        });
        await new Promise((r) => setTimeout(r, ctx.warmupMs));
        const from = done;
        const t0 = performance.now();
        await new Promise((r) => setTimeout(r, ctx.measureMs));
        const count = done - from;
        const seconds = (performance.now() - t0) / 1000;
        await runner.stop();
        if (done >= jobsPerRound) throw new Error('The graphile-worker bench ran out of queued jobs; raise jobsPerRound.');
        return [{ key: 'graphile.jobs_per_s', label: 'graphile-worker no-op jobs/s (concurrency 10, full queue)', value: count / seconds, unit: 'jobs/s' }];
      },
      async teardown() {
        await pool.end();
      },
    };
  },
};
