/**
 * The compiled CLI, as `npm install` leaves it: `npm run build`'s dist/ run by bin/tollgate.js with
 * plain node (no tsx, no NODE_OPTIONS). Against a fresh test database it migrates (the migrations
 * are found from dist/), lists and starts runs; a TypeScript project module loads (tsx only for
 * it) and shares the compiled modules; a missing or stale build is refused in one sentence naming
 * `npm run build`. No timings here: bench/cli.ts measures the start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, TEST_AUDIT_ENV, type TestDb } from './helpers/db.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin/tollgate.js');
const PROJECT = path.join(ROOT, 'test/fixtures/compiled-project.ts');

let db: TestDb;
let env: NodeJS.ProcessEnv;
const children: ChildProcess[] = [];

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node <bin> args…`: plain node, whatever the test runner put in NODE_OPTIONS. */
function node(bin: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [bin, ...args], { cwd: ROOT, env: { ...env, ...extraEnv } });
    children.push(p);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  // What `npm install` / `npm ci` run (`prepare`), minus the clean: dist/ is rewritten in place.
  const build = await new Promise<Ran>((resolve) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT });
    let stdout = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr: '' }));
  });
  expect(build.stdout).toBe('');
  expect(build.code).toBe(0);
  db = await createTestDb({ migrate: false });
  const { NODE_OPTIONS: _n, TOLLGATE_CONFIG: _c, ...inherited } = process.env;
  env = { ...inherited, ...TEST_AUDIT_ENV, DATABASE_URL: db.url, LOG_LEVEL: 'error', LOG_FORMAT: 'json', WORKER_POLL_INTERVAL_MS: '100' };
}, 240_000);
afterAll(async () => {
  for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await db?.close();
});

describe('bin/tollgate.js runs the compiled CLI with plain node', () => {
  it('prints its commands', async () => {
    const help = await node(BIN, ['--help']);
    expect(help.stderr).toBe('');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: tollgate/);
    for (const command of ['start', 'worker', 'runs', 'approvals', 'audit']) expect(help.stdout).toContain(command);
  });

  it('migrates a fresh database from dist/, then lists and starts runs', async () => {
    const empty = await node(BIN, ['runs', 'list']);
    expect(empty.stderr).toBe('');
    expect(empty.stdout).toContain('No runs yet.');
    expect(empty.code).toBe(0);

    const started = await node(BIN, ['run', 'demo', 'name=Ada', '--json']);
    expect(started.code).toBe(0);
    const { id } = JSON.parse(started.stdout) as { id: string };
    const listed = await node(BIN, ['runs', 'list', '--json']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id, workflow: 'demo', status: 'queued' })]);
  });

  it("loads a TypeScript project module, whose imports of Tollgate's sources are the compiled modules the worker runs", async () => {
    const withProject = { TOLLGATE_CONFIG: PROJECT };
    const listed = await node(BIN, ['workflows', '--json'], withProject);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { name: string }[]).map((w) => w.name)).toContain('refuse');

    const worker = spawn(process.execPath, [BIN, 'worker'], { cwd: ROOT, env: { ...env, ...withProject } });
    children.push(worker);
    let workerOut = '';
    worker.stdout.on('data', (d) => (workerOut += d));
    worker.stderr.on('data', (d) => (workerOut += d));
    const ran = await node(BIN, ['run', 'refuse', '--wait', '--json'], withProject);
    expect(ran.code, `${ran.stderr}\nworker:\n${workerOut}`).toBe(1); // the run failed, as its step meant
    const detail = JSON.parse(ran.stdout) as { run: { status: string }; steps: { name: string; status: string; attempts: number }[] };
    expect(detail.run.status).toBe('failed');
    // The executor recognised the module's NonRetriableError: one attempt of the three allowed.
    expect(detail.steps).toEqual([expect.objectContaining({ name: 'refuse', status: 'failed', attempts: 1 })]);
    worker.kill('SIGTERM');
    expect(await new Promise((resolve) => worker.on('exit', resolve))).toBe(0);
  }, 120_000);
});

describe('bin/tollgate.js refuses a build it cannot trust', () => {
  /** A package root with bin/tollgate.js, one source file and, optionally, a dist/ entry point. */
  async function packageRoot(dist: 'none' | 'older' | 'newer'): Promise<string> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-bin-'));
    await fs.mkdir(path.join(root, 'bin'));
    await fs.copyFile(BIN, path.join(root, 'bin/tollgate.js'));
    await fs.writeFile(path.join(root, 'package.json'), '{ "type": "module" }\n');
    await fs.symlink(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
    await fs.mkdir(path.join(root, 'src/runtime'), { recursive: true });
    await fs.writeFile(path.join(root, 'src/runtime/step.ts'), 'export {};\n');
    if (dist !== 'none') {
      const entry = path.join(root, 'dist/src/cli/main.js');
      await fs.mkdir(path.dirname(entry), { recursive: true });
      await fs.writeFile(entry, "export async function main() { process.stdout.write('compiled CLI ran\\n'); return 0; }\n");
      const source = Date.now() / 1000;
      await fs.utimes(entry, source + (dist === 'newer' ? 60 : -60), source + (dist === 'newer' ? 60 : -60));
      await fs.utimes(path.join(root, 'src/runtime/step.ts'), source, source);
    }
    return root;
  }

  it('names `npm run build` when there is no build, or when a source is newer than it', async () => {
    const roots = { none: await packageRoot('none'), older: await packageRoot('older'), newer: await packageRoot('newer') };
    try {
      const missing = await node(path.join(roots.none, 'bin/tollgate.js'), ['runs', 'list']);
      expect(missing).toMatchObject({ code: 1, stdout: '' });
      expect(missing.stderr).toBe('Tollgate is not built (dist/src/cli/main.js is missing): run `npm run build` (npm install runs it too).\n');

      const stale = await node(path.join(roots.older, 'bin/tollgate.js'), ['runs', 'list']);
      expect(stale).toMatchObject({ code: 1, stdout: '' });
      expect(stale.stderr).toMatch(/^Tollgate's compiled JavaScript in dist\/ is older than src\/runtime\/step\.ts: run `npm run build`, .*\n$/);

      const fresh = await node(path.join(roots.newer, 'bin/tollgate.js'), ['runs', 'list']);
      expect(fresh).toMatchObject({ code: 0, stdout: 'compiled CLI ran\n', stderr: '' });
    } finally {
      for (const root of Object.values(roots)) await fs.rm(root, { recursive: true, force: true });
    }
  });
});
