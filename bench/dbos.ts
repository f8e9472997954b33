/**
 * The same five no-op steps as `bench/runtime.ts`, in DBOS Transact (`@dbos-inc/dbos-sdk`), on
 * its own system database on the same server: `DBOS.startWorkflow(wf)()` then
 * `handle.getResult()`, 10 concurrent callers for throughput and one for latency. DBOS runs a
 * started workflow in the calling process, so its figures have no queue hop; Tollgate's go through
 * a Graphile job (so that any worker process can run, and resume, the run).
 */
import { DBOS } from '@dbos-inc/dbos-sdk';
import type pg from 'pg';
import { createPool } from '../src/db/connect.ts';
import { measureWorkflowSystem, type BenchContext, type BenchSection } from './types.ts';

export const CONCURRENT = 10;

/** DBOS on the database `url`, launched, ready for `oneRun()` (also bench/statements.ts). */
export async function setupDbos(ctx: BenchContext, url: string): Promise<{ pool: pg.Pool; oneRun: () => Promise<void>; teardown: () => Promise<void> }> {
  const step = async (i: number) => i;
  const fiveSteps = DBOS.registerWorkflow(
    async () => {
      for (let i = 1; i <= 5; i++) await DBOS.runStep(() => step(i), { name: `s${i}` });
      return 'done';
    },
    { name: 'benchFiveSteps' },
  );
  const quiet = { info: () => {}, debug: () => {}, warn: () => {}, error: (e: unknown) => ctx.log.error({ err: e }, 'dbos') };
  DBOS.setConfig({ name: 'tollgate-bench', systemDatabaseUrl: url, logger: quiet, logLevel: 'error' });
  await DBOS.launch();
  const pool = createPool(url, 1, ctx.log); // for the bench's meters only
  const oneRun = async () => {
    const handle = await DBOS.startWorkflow(fiveSteps)();
    const out = await handle.getResult();
    if (out !== 'done') throw new Error(`DBOS bench workflow returned ${String(out)}`);
  };
  return {
    pool,
    oneRun,
    async teardown() {
      await pool.end();
      await DBOS.shutdown();
    },
  };
}

export const dbosSection: BenchSection = {
  name: 'dbos',
  async setup(ctx) {
    const { pool, oneRun, teardown } = await setupDbos(ctx, await ctx.database('bench_dbos'));
    return {
      measure: () => measureWorkflowSystem(ctx, pool, { key: 'dbos', name: 'DBOS', latencyLabel: 'start → result', concurrent: CONCURRENT, oneRun }),
      teardown,
    };
  },
};
