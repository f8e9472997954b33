/**
 * The first contact of a user, end to end with real processes: `tollgate start` on an empty data
 * dir (embedded PostgreSQL, no DATABASE_URL), /readyz, `tollgate run demo` and `runs show` from
 * separate CLI processes that find the running database through TOLLGATE_DATA_DIR, SIGTERM →
 * exit 0, and a second start that still has the run. CLI commands with nothing running start the
 * embedded database themselves.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
let dataDir: string;
let env: NodeJS.ProcessEnv;
/** Every `tollgate start` this file spawned: killed at the end even when an assertion failed. */
const started: ChildProcess[] = [];

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const { LOG_LEVEL: _quiet, ...cliEnv } = env; // CLI commands log warnings only, on stderr
    const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, env: cliEnv });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function start(): Promise<{ proc: ChildProcess; url: string; exited: Promise<number | null> }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start'], { cwd: ROOT, env });
  started.push(proc);
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`tollgate start did not listen within 90 s:\n${out}`)), 90_000);
    proc.stdout?.on('data', (d) => {
      out += d;
      const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1] as string);
      }
    });
    proc.stderr?.on('data', (d) => (out += d));
    proc.on('exit', () => reject(new Error(`tollgate start exited early:\n${out}`)));
  });
  return { proc, url, exited };
}

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-e2e-'));
  await fs.chmod(dataDir, 0o755);
  env = { ...process.env, TOLLGATE_DATA_DIR: dataDir, PORT: '0', LOG_FORMAT: 'json', LOG_LEVEL: 'info', DATABASE_URL: '' };
});
afterAll(async () => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await fs.rm(dataDir, { recursive: true, force: true });
});

describe('npm start on a machine with no PostgreSQL', () => {
  it('serves /readyz, runs demo from the CLI, shows its timeline, exits 0 on SIGTERM and keeps the run', async () => {
    const first = await start();
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);

    const ran = await cli(['run', 'demo', 'name=Ada', 'sleepMs=100', '--wait']);
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    const runId = /Run (run_[0-9a-z]+)/.exec(ran.stdout)?.[1] as string;
    expect(runId).toBeTruthy();

    const shown = await cli(['runs', 'show', runId]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('SUCCEEDED');
    for (const step of ['prepare', 'fetch', 'pause', 'transform', 'publish']) expect(shown.stdout).toMatch(new RegExp(`${step}\\s+ok`));

    first.proc.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    // the embedded server went down with it
    await expect(fs.access(path.join(dataDir, 'pg', 'postmaster.pid'))).rejects.toThrow();

    // with nothing running, a CLI command starts the embedded database itself
    const listed = await cli(['runs', 'list', '--json']);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { id: string }[]).map((r) => r.id)).toContain(runId);

    const second = await start();
    const json = await cli(['runs', 'show', runId, '--json']);
    expect(JSON.parse(json.stdout).run).toMatchObject({ id: runId, status: 'succeeded' });
    second.proc.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 240_000);
});
