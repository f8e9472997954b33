/**
 * PostgreSQL killed while a run is in flight: `tollgate start` (a real child process) stays up,
 * /readyz says why while the database is away, the worker comes back by itself when the database
 * does, and the run finishes with each step's effect done once per idempotency key.
 *
 * This file kills a PostgreSQL of its own (an embedded server on its own data dir), never the
 * shared test server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, ensureDatabase } from '../src/db/connect.ts';
import { findRunningServer, startEmbeddedPostgres, withDatabase, type EmbeddedServer } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrate.ts';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { outageWorkflow } from './fixtures/outage-project.ts';
import { testLogger } from './helpers/log.ts';
import { testAuditKey } from './helpers/db.ts';
import { poll, holdsFor } from './helpers/poll.ts';
import { waitForRun } from './helpers/runtime.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const PROJECT = path.resolve(import.meta.dirname, 'fixtures/outage-project.ts');

let dataDir: string;
let server: EmbeddedServer | undefined;
let port: number;
let dbUrl: string;
let pool: pg.Pool | undefined;
let app: ChildProcess | undefined;

/** The fake outside service: records every effect call; holds the first call of `in-flight` open until released. */
const calls: { step: string; key: string; attempt: number }[] = [];
let releaseHeld: (() => void) | undefined;
let heldArrived: () => void = () => {};
const held = new Promise<void>((resolve) => (heldArrived = resolve));
const effects = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d: Buffer) => (body += d.toString()));
  req.on('end', () => {
    const { step, attempt } = JSON.parse(body) as { step: string; attempt: number };
    calls.push({ step, key: String(req.headers['idempotency-key']), attempt });
    const answer = () => {
      if (!res.headersSent && !res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    };
    if (step === 'in-flight' && attempt === 1 && !releaseHeld) {
      releaseHeld = answer;
      heldArrived();
    } else answer();
  });
});

/** The app's last output, for a failed wait's message. */
const appOutput = () => `App output:\n${output.slice(-6000)}`;

let output = '';
let exitCode: number | null | undefined; // undefined while the app runs

async function startAppProcess(): Promise<string> {
  const env = {
    ...process.env,
    DATABASE_URL: dbUrl,
    TOLLGATE_CONFIG: PROJECT,
    OUTAGE_EFFECTS_URL: `http://127.0.0.1:${(effects.address() as AddressInfo).port}`,
    PORT: '0',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    WORKER_POLL_INTERVAL_MS: '200',
    WORKER_DEAD_AFTER_MS: '3000',
    WORKER_CONCURRENCY: '2',
  } as NodeJS.ProcessEnv;
  delete env.SLACK_BOT_TOKEN;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start'], { cwd: ROOT, env });
  app = child;
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  child.on('exit', (code, signal) => {
    exitCode = code ?? (signal ? -1 : null);
    output += `\n[tollgate start exited: code ${code}, signal ${signal}]\n`;
  });
  return poll(async () => /"url":"(http:\/\/[^"]+)"/.exec(output)?.[1], { message: 'tollgate start to listen', timeoutMs: 90_000, detail: appOutput });
}

/** SIGKILLs the postmaster and every process under it, as a crashed host or the OOM killer would. */
function killPostgres(): void {
  const running = findRunningServer(path.join(dataDir, 'pg'));
  if (!running) throw new Error('the test PostgreSQL is not running');
  let children: number[] = [];
  try {
    children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(running.pid)], { encoding: 'utf8' })
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((n) => n > 0);
  } catch {
    // no children listed
  }
  process.kill(running.pid, 'SIGKILL');
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function readyz(url: string): Promise<{ status: number; body: { ok: boolean; reasons?: string[] } }> {
  const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: (await res.json()) as { ok: boolean; reasons?: string[] } };
}

beforeAll(async () => {
  await new Promise<void>((resolve) => effects.listen(0, '127.0.0.1', resolve));
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-outage-'));
  await fs.chmod(dataDir, 0o755);
  // The test plays the operator who restarts PostgreSQL (the DATABASE_URL case): no supervisor.
  server = await startEmbeddedPostgres({ dataDir, port: 0, log: testLogger(), supervision: false });
  port = server.port;
  await ensureDatabase(server.url, 'tollgate');
  dbUrl = withDatabase(server.url, 'tollgate');
  pool = createPool(dbUrl, 4, testLogger(), testAuditKey);
  await migrate(pool, testLogger());
}, 120_000);

afterAll(async () => {
  if (app && exitCode === undefined) {
    app.kill('SIGKILL');
    await poll(async () => (exitCode === undefined ? undefined : true), { message: 'the app to exit', timeoutMs: 10_000, detail: appOutput }).catch(() => {});
  }
  releaseHeld?.();
  await pool?.end().catch(() => {});
  await server?.stop().catch(() => {});
  effects.close();
  effects.closeAllConnections();
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
}, 60_000);

describe('PostgreSQL killed while a step is in flight', () => {
  it('keeps `tollgate start` up, reports the outage on /readyz, comes back by itself, and finishes the run with each effect once', async () => {
    const url = await startAppProcess();
    expect((await readyz(url)).status).toBe(200);

    const runtime = new Runtime({ pool: pool as pg.Pool, registry: new WorkflowRegistry().register(outageWorkflow), log: testLogger() });
    const run = await runtime.startRun({ workflow: 'outage', input: {} });
    await held; // the middle step's effect call is open: the step is in flight

    killPostgres();
    const down = await poll(
      async () => {
        const r = await readyz(url);
        return r.status === 503 ? r : undefined;
      },
      { message: '/readyz to report the outage', timeoutMs: 60_000, detail: appOutput },
    );
    expect(down.body.ok).toBe(false);
    expect(down.body.reasons?.join(' ')).toMatch(/database unreachable/);

    // The step finishes while the database is away: its result cannot be recorded and the job can
    // be neither completed nor failed. That is where the unhandled ECONNREFUSED ended the process.
    releaseHeld?.();
    await poll(async () => (output.includes('Failed task') || output.includes('the worker stopped') || exitCode !== undefined ? true : undefined), {
      message: 'the worker to see the step fail to record',
      timeoutMs: 60_000,
      detail: appOutput,
    });
    // Nothing to wait for here: the behaviour under test is that the process does NOT exit, so it
    // is watched for 3 s in which the unhandled rejection used to end it.
    await holdsFor(() => exitCode === undefined, { forMs: 3000, message: 'tollgate start to stay up while PostgreSQL is down', detail: appOutput });
    expect(exitCode, `tollgate start exited while PostgreSQL was down:\n${output.slice(-6000)}`).toBeUndefined();
    // Graphile Worker shut its pool down (the job could not be failed): /readyz says so too.
    const restarting = await poll(
      async () => {
        const r = await readyz(url);
        return r.body.reasons?.some((x) => x.startsWith('worker stopped')) ? r : undefined;
      },
      { message: '/readyz to report the worker restarting', timeoutMs: 60_000, detail: appOutput },
    );
    expect(restarting.status).toBe(503);
    expect(restarting.body.reasons?.join(' ')).toMatch(/database unreachable.*worker stopped \(.*\); restarting it/);

    server = await startEmbeddedPostgres({ dataDir, port, log: testLogger(), supervision: false });
    const up = await poll(
      async () => {
        const r = await readyz(url);
        return r.status === 200 ? r : undefined;
      },
      { message: '/readyz to be ready again', timeoutMs: 90_000, detail: appOutput },
    );
    expect(up.body).toEqual({ ok: true });

    const done = await waitForRun(runtime, run.id, ['succeeded', 'failed', 'dead_letter'], 90_000);
    expect(done.status).toBe('succeeded');
    expect(exitCode, 'tollgate start is still running').toBeUndefined();

    // Each step's effect was done once, under one idempotency key.
    const byStep = (step: string) => calls.filter((c) => c.step === step);
    expect(byStep('before')).toHaveLength(1);
    expect(byStep('after')).toHaveLength(1);
    // The middle step's body finished while PostgreSQL was down: this process held its result and
    // recorded it once the database was back, without running the body again.
    expect(byStep('in-flight')).toHaveLength(1);
    const { rows: succeeded } = await (pool as pg.Pool).query<{ n: string }>(
      `SELECT count(*) AS n FROM tollgate.events WHERE run_id = $1 AND type = 'step.succeeded' AND payload->>'step' = 'in-flight'`,
      [run.id],
    );
    expect(Number(succeeded[0]?.n)).toBe(1);
    expect(new Set(calls.map((c) => c.key)).size).toBe(3);
    expect(done.output).toEqual(['before', 'in-flight', 'after'].map((s) => byStep(s)[0]?.key));
    // Handled at the source, not by the last-resort handler.
    expect(output).not.toContain('unhandled promise rejection');

    app?.kill('SIGTERM');
    await poll(async () => exitCode !== undefined, { message: 'tollgate start to exit on SIGTERM', timeoutMs: 30_000, detail: appOutput });
    expect(exitCode).toBe(0);
  }, 300_000);
});
