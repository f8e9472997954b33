/**
 * How long a `tollgate` command takes, start to exit, as a person at a shell waits for it:
 * `tollgate runs list` (the compiled CLI, `node bin/tollgate.js`, as `npm install` leaves it)
 * against an already-running database holding 20 runs, beside `node -e ''`, the floor no Node
 * command goes under on this machine. Each figure is the median of BENCH_CLI_SAMPLES process starts
 * (default 7), the two interleaved so that the machine's noise falls on both alike.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { startApp } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { percentile, type BenchSection } from './types.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin/tollgate.js');
const RUNS = 20;

interface Exited {
  code: number | null;
  stderr: string;
  ms: number;
}

function time(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Exited> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, stderr, ms: performance.now() - t0 }));
  });
}

export const cliSection: BenchSection = {
  name: 'cli',
  async setup(ctx) {
    const url = await ctx.database('bench_cli');
    const { NODE_OPTIONS: _n, TOLLGATE_CONFIG: _c, LOG_LEVEL: _l, ...inherited } = process.env;
    const env: NodeJS.ProcessEnv = { ...inherited, DATABASE_URL: url, TOLLGATE_AUDIT_KEY: randomBytes(32).toString('hex') };
    // The database is running and migrated, with runs to list, before anything is timed.
    const app = await startApp({ config: loadConfig(env), log: ctx.log, mode: 'none' });
    try {
      const requester = { platform: 'cli', tenant: 'bench', user: 'bench' } as const;
      for (let i = 0; i < RUNS; i++) {
        await app.runtime.startRun({ workflow: 'demo', input: { name: `bench ${i}` }, requester, origin: { platform: 'cli', osUser: 'bench' } });
      }
    } finally {
      await app.stop();
    }
    // Time what `npm install` would have built from these sources: build first if dist/ is missing
    // or stale (bin/tollgate.js refuses it, naming `npm run build`).
    let first = await time(process.execPath, [BIN, 'runs', 'list'], env);
    if (first.code !== 0 && /npm run build/.test(first.stderr)) {
      process.stderr.write('bench: cli: dist/ is missing or older than the sources; npm run build …\n');
      const built = await time('npm', ['run', '--silent', 'build'], process.env);
      if (built.code !== 0) throw new Error(`bench: cli: npm run build failed:\n${built.stderr}`);
      first = await time(process.execPath, [BIN, 'runs', 'list'], env);
    }
    if (first.code !== 0) throw new Error(`bench: cli: tollgate runs list failed:\n${first.stderr}`);
    const samples = Math.max(1, Number(process.env.BENCH_CLI_SAMPLES ?? 7));
    return {
      async measure() {
        const floor: number[] = [];
        const list: number[] = [];
        for (let i = 0; i < samples; i++) {
          floor.push((await time(process.execPath, ['-e', ''], env)).ms);
          const run = await time(process.execPath, [BIN, 'runs', 'list'], env);
          if (run.code !== 0) throw new Error(`bench: cli: tollgate runs list failed:\n${run.stderr}`);
          list.push(run.ms);
        }
        floor.sort((a, b) => a - b);
        list.sort((a, b) => a - b);
        return [
          {
            key: 'cli.runs_list_ms',
            label: '`tollgate runs list` wall time (20 runs, database running)',
            value: percentile(list, 50),
            unit: 'ms',
            note: 'goal ≤ 400 ms',
          },
          { key: 'cli.node_floor_ms', label: "`node -e ''` wall time (the floor)", value: percentile(floor, 50), unit: 'ms' },
        ];
      },
      async teardown() {},
    };
  },
};
