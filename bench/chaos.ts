/**
 * `npm run chaos`: the chaos suite (test/fixtures/chaos/rounds.ts) for as many rounds as you
 * like. Exits 1 when any invariant broke in any round.
 *
 *   CHAOS_ROUNDS        rounds (default 10)
 *   CHAOS_DISRUPTIONS   comma-separated subset of kill-worker,slack-errors,restart-pg (default: all)
 *   CHAOS_WORKERS       worker processes (default 2)
 *   CHAOS_SETTLE_MS     the bounded wait for runs to settle after each round (default 60000)
 *   CHAOS_PG_DOWN_MS    how long PostgreSQL stays down (default 2000)
 *   CHAOS_LOG_LEVEL     the suite's own log level (default warn)
 *   CHAOS_VERBOSE       1: also print each step of each round with its time
 */
import { parseDisruptions, runChaos } from '../test/fixtures/chaos/rounds.ts';

const num = (name: string, fallback: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} is "${v}"; set it to a whole number such as ${fallback}.`);
  return n;
};

const report = await runChaos({
  rounds: num('CHAOS_ROUNDS', 10),
  disruptions: parseDisruptions(process.env.CHAOS_DISRUPTIONS),
  workers: num('CHAOS_WORKERS', 2),
  settleMs: num('CHAOS_SETTLE_MS', 60_000),
  pgDownMs: num('CHAOS_PG_DOWN_MS', 2000),
  verbose: process.env.CHAOS_VERBOSE === '1',
});
process.exit(report.ok ? 0 : 1);
