/**
 * SIGTERM to a real `tollgate start` (a child process on a test database): it exits within
 * TOLLGATE_SHUTDOWN_TIMEOUT_MS whatever its clients and steps do, every click it acknowledged is
 * recorded, and no job stays locked after it: a run cut off mid-step resumes on the next start at
 * once, not after WORKER_DEAD_AFTER_MS (set to a minute here, so waiting it out would show).
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { blockAction } from './fakes/slack/requests.ts';
import { signSlackRequest } from './fakes/slack/requests.ts';
import { startFakeSlack, type FakeSlack } from './fakes/slack/server.ts';
import { gateWorkflow, heldWorkflow, SHUTDOWN_APPROVERS, SHUTDOWN_TEAM } from './fixtures/shutdown-project.ts';
import { startAppProcess, type AppProcess } from './helpers/app-process.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { poll } from './helpers/poll.ts';
import { waitForRun } from './helpers/runtime.ts';

const PROJECT = path.resolve(import.meta.dirname, 'fixtures/shutdown-project.ts');
const SHUTDOWN_TIMEOUT_MS = 5000;
/** What exiting may take beyond the timeout on a busy machine (the process's own teardown). */
const EXIT_MARGIN_MS = 2000;
const SIGNING_SECRET = 'shutdown-signing-secret';

let db: TestDb;
let slack: FakeSlack;
let runtime: Runtime;
const apps: AppProcess[] = [];

beforeAll(async () => {
  db = await createTestDb();
  slack = await startFakeSlack({ token: 'xoxb-shutdown' });
  runtime = new Runtime({ pool: db.pool, registry: new WorkflowRegistry().register(gateWorkflow, heldWorkflow), log: testLogger() });
}, 120_000);
afterEach(async () => {
  for (const a of apps.splice(0)) {
    a.kill('SIGKILL');
    await a.exited;
  }
});
afterAll(async () => {
  await slack?.close();
  await db?.close();
});

async function start(env: Record<string, string> = {}): Promise<AppProcess> {
  const app = await startAppProcess({
    ...env,
    DATABASE_URL: db.url,
    TOLLGATE_CONFIG: PROJECT,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_BOT_TOKEN: 'xoxb-shutdown',
    SLACK_API_URL: slack.apiUrl,
    TOLLGATE_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    WORKER_DEAD_AFTER_MS: '60000',
    WORKER_POLL_INTERVAL_MS: '200',
  });
  apps.push(app);
  return app;
}

async function lockedJobs(): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM graphile_worker.jobs WHERE locked_at IS NOT NULL');
  return Number(rows[0]?.n);
}

/** Is this click durable: its decision recorded, or its `chat-intent` job (the recorded click) waiting? */
async function clickDurable(approvalId: string, user: string, decisionOnly = false): Promise<boolean> {
  const { rows } = await db.pool.query<{ decided: boolean; queued: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM tollgate.approval_decisions WHERE approval_id = $1 AND principal = $2) AS decided,
            EXISTS (SELECT 1 FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
                     WHERE t.identifier = 'chat-intent' AND j.payload->>'approvalId' = $1 AND j.payload::text LIKE '%' || $3 || '%') AS queued`,
    [approvalId, `slack:${SHUTDOWN_TEAM}:${user}`, user],
  );
  const r = rows[0];
  return Boolean(r?.decided || (!decisionOnly && r?.queued));
}

/** Does a new connection to `port` get refused? */
function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/** Sends one signed click; resolves with its status, or 0 when the connection was refused or cut. */
async function click(url: string, approvalId: string, user: string): Promise<number> {
  const req = blockAction({
    userId: user,
    teamId: SHUTDOWN_TEAM,
    actionId: 'approval.approve',
    value: approvalId,
    channelId: `D${user}`,
    messageTs: '1700000000.000100',
  });
  try {
    const res = await fetch(`${url}/slack/events`, {
      method: 'POST',
      headers: { 'content-type': req.contentType, ...signSlackRequest(SIGNING_SECRET, req.body) },
      body: req.body,
    });
    await res.text();
    return res.status;
  } catch {
    return 0;
  }
}

describe('SIGTERM to tollgate start', () => {
  it('during a burst of 200 signed Slack clicks: it exits within the timeout, every acknowledged click is recorded, and no job stays locked', async () => {
    const first = await start();
    const approvals: string[] = [];
    for (let i = 0; i < 20; i++) {
      const run = await runtime.startRun({ workflow: 'gate', input: {} });
      await waitForRun(runtime, run.id, 'waiting');
      const { rows } = await db.pool.query<{ id: string }>(`SELECT id FROM tollgate.approvals WHERE run_id = $1`, [run.id]);
      approvals.push(rows[0]?.id as string);
    }
    const clicks = approvals.flatMap((approvalId) => SHUTDOWN_APPROVERS.map((user) => ({ approvalId, user })));
    expect(clicks).toHaveLength(200);

    let acked = 0;
    let signalledAt = 0;
    const statuses = await Promise.all(
      clicks.map(async (c) => {
        const status = await click(first.url, c.approvalId, c.user);
        // SIGTERM lands in the middle of the burst.
        if (status === 200 && ++acked === 40) {
          signalledAt = Date.now();
          first.kill('SIGTERM');
        }
        return status;
      }),
    );
    const exit = await first.exited;
    expect(signalledAt).toBeGreaterThan(0);
    expect(exit.at - signalledAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS);
    expect(exit.code).toBe(0);

    const ackedClicks = clicks.filter((_, i) => statuses[i] === 200);
    // Refused ones were refused, not half-taken: connection refused or cut before any answer, or 503.
    expect(statuses.every((s) => s === 200 || s === 0 || s === 503)).toBe(true);
    for (const c of ackedClicks) expect(await clickDurable(c.approvalId, c.user), `click of ${c.user} on ${c.approvalId}`).toBe(true);
    expect(await lockedJobs()).toBe(0);

    // The next start carries out every acknowledged click that was only queued.
    const second = await start();
    await poll(
      async () => {
        for (const c of ackedClicks) if (!(await clickDurable(c.approvalId, c.user, true))) return false;
        return true;
      },
      { message: 'every acknowledged click to have its decision', timeoutMs: 30_000, detail: () => second.output().slice(-4000) },
    );
    second.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
    expect(await lockedJobs()).toBe(0);
  }, 180_000);

  // The worker in its thread (the default), and on the main thread.
  it.each(['on', 'off'])(
    'with 50 idle keep-alive connections and a run mid-step (worker thread %s): exits within the timeout, and the run resumes on the next start at once',
    async (thread) => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-shutdown-'));
      try {
        const first = await start({ TOLLGATE_WORKER_THREAD: thread });
        const run = await runtime.startRun({ workflow: 'held', input: { dir } });
        await poll(() => fs.access(path.join(dir, 'holding-1')).then(() => true), {
          message: 'the step to be running',
          detail: () => first.output().slice(-4000),
        });

        // 50 clients that asked once and keep their connections open, as a load balancer's pool does.
        const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
        let closedSockets = 0;
        await Promise.all(
          Array.from(
            { length: 50 },
            () =>
              new Promise<void>((resolve, reject) => {
                http
                  .get(`${first.url}/healthz`, { agent }, (res) => res.resume().on('end', resolve))
                  .on('socket', (s) => s.once('close', () => closedSockets++))
                  .on('error', reject);
              }),
          ),
        );
        expect(await first.openConnections()).toBe(50);

        // A probe half-way through its request when the signal comes.
        const probe = net.connect(first.port, '127.0.0.1');
        let probeAnswer = '';
        probe.on('data', (d: Buffer) => (probeAnswer += d.toString()));
        const probeEnded = new Promise<void>((r) => probe.once('close', () => r()));
        await new Promise<void>((r) => probe.once('connect', () => r()));
        probe.write('GET /readyz HTTP/1.1\r\nHost: tollgate\r\n');
        await poll(async () => (await first.openConnections()) === 51, { message: 'the probe to be inside' });

        const signalledAt = Date.now();
        first.kill('SIGTERM');
        // The idle connections are closed at once, long before the exit.
        await poll(() => closedSockets === 50, { message: 'the idle keep-alive connections to be closed', timeoutMs: SHUTDOWN_TIMEOUT_MS / 2 });
        // New connections are refused while the process is still finishing.
        await poll(() => refusesConnections(first.port), { message: 'new connections to be refused', timeoutMs: 1000 });
        expect(first.child.exitCode).toBeNull();
        // The probe in flight learns that this process is going away, and its connection closes.
        probe.write('\r\n');
        await probeEnded;
        expect(probeAnswer).toMatch(/^HTTP\/1\.1 503/);
        expect(probeAnswer).toMatch(/connection: close/i);
        expect(probeAnswer).toContain('shutting down');
        const exit = await first.exited;
        agent.destroy();
        expect(exit.at - signalledAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS);
        expect(first.output()).toContain('jobs are unlocked for the next worker');
        // The step could not finish; its job was given back at the exit, not left to a heartbeat.
        expect(await lockedJobs()).toBe(0);

        const second = await start();
        const listening = Date.now();
        await fs.writeFile(path.join(dir, 'release'), 'go');
        await waitForRun(runtime, run.id, 'succeeded');
        // Well under WORKER_DEAD_AFTER_MS (60 s): nobody waited for the first process's heartbeat to go stale.
        expect(Date.now() - listening).toBeLessThan(20_000);
        await expect(fs.access(path.join(dir, 'holding-2'))).resolves.toBeUndefined();
        second.kill('SIGTERM');
        expect((await second.exited).code).toBe(0);
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    },
    180_000,
  );

  it('a second SIGTERM exits at once', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-shutdown-'));
    try {
      const app = await start();
      await runtime.startRun({ workflow: 'held', input: { dir } });
      await poll(() => fs.access(path.join(dir, 'holding-1')).then(() => true), { message: 'the step to be running', detail: () => app.output().slice(-4000) });
      app.kill('SIGTERM');
      await poll(() => app.output().includes('"shutting down"'), { message: 'the shutdown to begin' });
      const again = Date.now();
      app.kill('SIGTERM');
      const exit = await app.exited;
      expect(exit.code).toBe(1);
      // Not the shutdown timeout, which the held step would otherwise run into.
      expect(exit.at - again).toBeLessThan(SHUTDOWN_TIMEOUT_MS / 2);
      expect(app.output()).toContain('second signal: exiting now');
    } finally {
      await fs.writeFile(path.join(dir, 'release'), 'go').catch(() => {});
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
