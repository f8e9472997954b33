/**
 * A real `tollgate start` for the bench (bin/tollgate.js, exactly as `npm start` runs it): one
 * process with its HTTP server and, off that server's event loop, its worker. The bench process
 * plays Slack (the fake Web API and the signed requests), so the client's work never shares the
 * measured process's CPU time or event loop.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/free-port.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin/tollgate.js');

export interface TollgateProcess {
  readonly url: string;
  readonly pid: number;
  /** The last lines it printed, for error reports. */
  tail(): string;
  /** SIGTERM, then waits for it to exit (SIGKILL after 15 s). */
  stop(): Promise<void>;
}

/**
 * Starts `tollgate start` with `env` on a free port; resolves once /readyz answers 200.
 * BENCH_TOLLGATE_NODE_ARGS adds Node options for it alone, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`
 * to profile the measured process (and its worker thread) rather than the bench.
 */
export async function startTollgate(env: Record<string, string>): Promise<TollgateProcess> {
  const port = await freePort();
  const nodeArgs = (process.env.BENCH_TOLLGATE_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, BIN, 'start'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => void (out = (out + d.toString()).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  if (process.env.BENCH_TOLLGATE_STDERR) child.stderr?.pipe(process.stderr);
  let exited = false;
  const gone = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const url = `http://127.0.0.1:${port}`;
  const tail = () => out.split('\n').slice(-30).join('\n');
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (exited) throw new Error(`tollgate start exited before it was ready:\n${tail()}`);
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`tollgate start was not ready within 90 s:\n${tail()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    pid: child.pid as number,
    tail,
    stop: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await gone;
      clearTimeout(timer);
    },
  };
}
