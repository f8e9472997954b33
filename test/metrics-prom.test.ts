/**
 * `GET /metrics` through the real HTTP server of `tollgate start` (issue 10, "Metrics"): runs that
 * succeed, fail and wait for an approval move the run and step duration histograms by exactly
 * their counts, with their labels; approvals pending go 1 → 0 and time-to-decision is observed
 * once; runs by status follow. Steps run in the worker thread, so their histogram reaching the
 * main thread's /metrics is the thread's registry merged into the scrape; a thread too busy to
 * answer does not hang a scrape. A `tollgate worker` process alone serves its own registry on
 * WORKER_METRICS_PORT.
 *
 * That a scrape never reads tollgate.runs is test/metrics.test.ts.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { instrumentsAsJson } from '../src/telemetry/metrics-registry.ts';
import { APPROVER, MODEL } from './fixtures/metrics-project.ts';
import { startFakeOpenAI, type FakeOpenAI } from './fakes/openai/index.ts';
import { createTestDb, TEST_AUDIT_ENV, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { waitForRun } from './helpers/runtime.ts';
import { poll } from './helpers/poll.ts';

const FIXTURE = path.resolve(import.meta.dirname, 'fixtures/metrics-project.ts');
let db: TestDb;
let app: App;
let dir: string;
let fake: FakeOpenAI;

beforeAll(async () => {
  db = await createTestDb();
  fake = await startFakeOpenAI();
  fake.respond(() => ({ json: { label: 'urgent' }, usage: { prompt_tokens: 1000, completion_tokens: 250 } }));
  dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-metrics-'));
  const config = loadConfig({
    DATABASE_URL: db.url,
    ...TEST_AUDIT_ENV,
    TOLLGATE_CONFIG: FIXTURE,
    PORT: '0',
    LOG_LEVEL: 'silent',
    WORKER_POLL_INTERVAL_MS: '100',
    TOLLGATE_MODEL: MODEL,
    OPENAI_BASE_URL: fake.url,
  });
  app = await startApp({ config, log: testLogger(), mode: 'all' });
}, 120_000);
afterAll(async () => {
  await app?.stop();
  await fake?.close();
  await db.close();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text → samples (comments skipped). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = l[2] as string;
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(url = app.url): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { text, samples: parse(text) };
}

/** The value of the one series `name` with exactly `labels`; 0 when absent (a series not yet observed). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()));
  expect(found.length, `${name}${JSON.stringify(labels)} appears more than once`).toBeLessThanOrEqual(1);
  return found[0]?.value ?? 0;
}

describe('GET /metrics of tollgate start', () => {
  it('moves the run and step histograms, approvals pending, time-to-decision and runs by status by what the runs did', async () => {
    const before = (await scrape()).samples;
    const step = (workflow: string, outcome: string) => ({ workflow, kind: 'step', outcome });
    const counts = (s: Sample[]) => ({
      okSteps: value(s, 'tollgate_step_duration_seconds_count', step('metrics-ok', 'succeeded')),
      failSteps: value(s, 'tollgate_step_duration_seconds_count', step('metrics-fail', 'failed')),
      failOkSteps: value(s, 'tollgate_step_duration_seconds_count', step('metrics-fail', 'succeeded')),
      approveSteps: value(s, 'tollgate_step_duration_seconds_count', step('metrics-approve', 'succeeded')),
      okRuns: value(s, 'tollgate_run_duration_seconds_count', { workflow: 'metrics-ok', outcome: 'succeeded' }),
      failRuns: value(s, 'tollgate_run_duration_seconds_count', { workflow: 'metrics-fail', outcome: 'failed' }),
      approveRuns: value(s, 'tollgate_run_duration_seconds_count', { workflow: 'metrics-approve', outcome: 'succeeded' }),
      decisions: value(s, 'tollgate_approval_decision_seconds_count', { workflow: 'metrics-approve', decision: 'approved' }),
    });
    const start = counts(before);

    const ok = await app.runtime.startRun({ workflow: 'metrics-ok', input: {} });
    const fail = await app.runtime.startRun({ workflow: 'metrics-fail', input: {} });
    const gated = await app.runtime.startRun({ workflow: 'metrics-approve', input: {} });
    expect(await waitForRun(app.runtime, ok.id, ['succeeded', 'failed'], 60_000)).toMatchObject({ status: 'succeeded' });
    expect(await waitForRun(app.runtime, fail.id, ['succeeded', 'failed'], 60_000)).toMatchObject({ status: 'failed' });
    await waitForRun(app.runtime, gated.id, ['waiting'], 60_000);

    const waiting = (await scrape()).samples;
    expect(value(waiting, 'tollgate_approvals_pending')).toBe(1);
    expect(value(waiting, 'tollgate_runs', { workflow: 'metrics-approve', status: 'waiting' })).toBe(1);
    expect(value(waiting, 'tollgate_runs', { workflow: 'metrics-ok', status: 'succeeded' })).toBe(1);
    expect(value(waiting, 'tollgate_runs', { workflow: 'metrics-fail', status: 'failed' })).toBe(1);
    expect(counts(waiting)).toEqual({
      ...start,
      okSteps: start.okSteps + 2,
      failSteps: start.failSteps + 1,
      okRuns: start.okRuns + 1,
      failRuns: start.failRuns + 1,
    });

    const approval = (await db.pool.query<{ id: string }>('SELECT id FROM tollgate.approvals WHERE run_id = $1', [gated.id])).rows[0]?.id as string;
    expect(await app.runtime.decide(approval, APPROVER, 'approve')).toMatchObject({ kind: 'recorded', resolved: 'approved' });
    expect(await waitForRun(app.runtime, gated.id, ['succeeded', 'failed'], 60_000)).toMatchObject({ status: 'succeeded', output: true });

    const after = (await scrape()).samples;
    expect(value(after, 'tollgate_approvals_pending')).toBe(0);
    expect(value(after, 'tollgate_runs', { workflow: 'metrics-approve', status: 'waiting' })).toBe(0);
    expect(value(after, 'tollgate_runs', { workflow: 'metrics-approve', status: 'succeeded' })).toBe(1);
    expect(counts(after)).toEqual({
      okSteps: start.okSteps + 2,
      failSteps: start.failSteps + 1,
      failOkSteps: start.failOkSteps,
      approveSteps: start.approveSteps + 1,
      okRuns: start.okRuns + 1,
      failRuns: start.failRuns + 1,
      approveRuns: start.approveRuns + 1,
      decisions: start.decisions + 1,
    });
    // A histogram's buckets are cumulative: +Inf holds every observation.
    expect(value(after, 'tollgate_run_duration_seconds_bucket', { workflow: 'metrics-approve', outcome: 'succeeded', le: '+Inf' })).toBe(start.approveRuns + 1);

    // The rest of the standard set is there.
    expect(value(after, 'tollgate_queue_lag_seconds_count', { task: 'run-advance' })).toBeGreaterThanOrEqual(4);
    expect(value(after, 'tollgate_db_pool_connections', { pool: 'tollgate' })).toBeGreaterThan(0);
    expect(value(after, 'tollgate_db_pool_connections', { pool: 'tollgate-worker' })).toBeGreaterThan(0);
    expect(value(after, 'tollgate_up')).toBe(1);
    expect(value(after, 'process_uptime_seconds')).toBeGreaterThan(0);
    expect(after.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);
  }, 180_000);

  it('counts a decision once when its transaction lost a race at commit and was retried', async () => {
    const decisions = (s: Sample[]) => value(s, 'tollgate_approval_decision_seconds_count', { workflow: 'metrics-approve', decision: 'approved' });
    const gated = await app.runtime.startRun({ workflow: 'metrics-approve', input: {} });
    await waitForRun(app.runtime, gated.id, ['waiting'], 60_000);
    const approval = (await db.pool.query<{ id: string }>('SELECT id FROM tollgate.approvals WHERE run_id = $1', [gated.id])).rows[0]?.id as string;
    // The first commit of a decision fails as a serialization failure would (a deferred trigger
    // runs at COMMIT); the decision's transaction is retried and commits the second time.
    // A sequence counts the commits: nextval is not undone by the rollback.
    await db.pool.query(`
      CREATE SEQUENCE public.decision_commits;
      CREATE FUNCTION public.fail_first_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('public.decision_commits') = 1 THEN RAISE EXCEPTION 'could not serialize access (test)' USING ERRCODE = '40001'; END IF;
        RETURN NULL;
      END $$;
      CREATE CONSTRAINT TRIGGER fail_first_commit AFTER INSERT ON tollgate.approval_decisions
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.fail_first_commit();`);
    try {
      const before = decisions((await scrape()).samples);
      expect(await app.runtime.decide(approval, APPROVER, 'approve')).toMatchObject({ kind: 'recorded', resolved: 'approved' });
      expect((await db.pool.query('SELECT last_value::int AS commits FROM public.decision_commits')).rows[0]).toEqual({ commits: 2 }); // failed once, then committed
      expect(await waitForRun(app.runtime, gated.id, ['succeeded', 'failed'], 60_000)).toMatchObject({ status: 'succeeded' });
      expect(decisions((await scrape()).samples) - before).toBe(1);
    } finally {
      await db.pool.query(
        `DROP TRIGGER fail_first_commit ON tollgate.approval_decisions; DROP FUNCTION public.fail_first_commit(); DROP SEQUENCE public.decision_commits;`,
      );
    }
  }, 120_000);

  it("counts a model step's tokens and cost by model, from the worker thread", async () => {
    const tokens = (s: Sample[], direction: string) => value(s, 'tollgate_model_tokens_total', { model: MODEL, direction });
    const before = (await scrape()).samples;
    const run = await app.runtime.startRun({ workflow: 'metrics-model', input: { text: 'the site is down' } });
    expect(await waitForRun(app.runtime, run.id, ['succeeded', 'failed'], 60_000)).toMatchObject({ status: 'succeeded', output: 'urgent' });
    const after = (await scrape()).samples;
    expect(tokens(after, 'input') - tokens(before, 'input')).toBe(1000);
    expect(tokens(after, 'output') - tokens(before, 'output')).toBe(250);
    // 1000 input tokens at 2 USD and 250 output tokens at 8 USD per million.
    const cost = value(after, 'tollgate_model_cost_usd_total', { model: MODEL }) - value(before, 'tollgate_model_cost_usd_total', { model: MODEL });
    expect(cost).toBeCloseTo(0.004, 9);
  }, 120_000);

  it('serves the worker thread’s step histogram from the main thread, and answers without it while the thread is too busy to reply', async () => {
    await app.runtime.startRun({ workflow: 'metrics-ok', input: {} }).then((r) => waitForRun(app.runtime, r.id, ['succeeded'], 60_000));
    const served = (await scrape()).samples;
    expect(value(served, 'tollgate_worker_thread_metrics_up')).toBe(1);
    expect(value(served, 'tollgate_step_duration_seconds_count', { workflow: 'metrics-ok', kind: 'step', outcome: 'succeeded' })).toBeGreaterThanOrEqual(2);
    // This (the main) thread ran no step: what /metrics shows of steps is the worker thread's.
    const own = await instrumentsAsJson();
    expect(own.find((m) => m.name === 'tollgate_step_duration_seconds')?.values ?? []).toEqual([]);

    // A step holds the thread's event loop: the scrape still answers, without the thread's series.
    const holding = path.join(dir, 'holding');
    const release = path.join(dir, 'release');
    const hog = await app.runtime.startRun({ workflow: 'metrics-hog', input: { holding, release } });
    await poll(async () => (existsSync(holding) ? true : undefined), { message: 'the hog step to hold its loop', timeoutMs: 60_000, retryErrors: false });
    const busy = (await scrape()).samples;
    expect(value(busy, 'tollgate_worker_thread_metrics_up')).toBe(0);
    expect(value(busy, 'tollgate_step_duration_seconds_count', { workflow: 'metrics-ok', kind: 'step', outcome: 'succeeded' })).toBe(0);
    expect(value(busy, 'tollgate_up')).toBe(1);
    await writeFile(release, 'go');
    expect(await waitForRun(app.runtime, hog.id, ['succeeded', 'failed'], 90_000)).toMatchObject({ status: 'succeeded', output: 'released' });
    const back = (await scrape()).samples;
    expect(value(back, 'tollgate_worker_thread_metrics_up')).toBe(1);
    expect(value(back, 'tollgate_step_duration_seconds_count', { workflow: 'metrics-hog', kind: 'step', outcome: 'succeeded' })).toBe(1);
  }, 180_000);
});

describe('GET /metrics of a tollgate worker process (WORKER_METRICS_PORT)', () => {
  it('serves the runs and steps it ran, its queue lag and its readiness, on its own port', async () => {
    // A database of its own, so only the worker process below runs these runs (the app above has a worker too).
    const own = await createTestDb();
    const env = {
      ...process.env,
      DATABASE_URL: own.url,
      ...TEST_AUDIT_ENV,
      TOLLGATE_CONFIG: FIXTURE,
      WORKER_METRICS_PORT: '0',
      PORT: '1',
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      WORKER_POLL_INTERVAL_MS: '100',
    };
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker'], { cwd: path.resolve(import.meta.dirname, '..'), env });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Starts runs only: no worker of its own.
    const starter = await startApp({
      config: loadConfig({ DATABASE_URL: own.url, ...TEST_AUDIT_ENV, TOLLGATE_CONFIG: FIXTURE, LOG_LEVEL: 'silent' }),
      log: testLogger(),
      mode: 'none',
    });
    try {
      const url = await poll(async () => /"url":"(http:\/\/[^"]+)","msg":"worker metrics and health listening"/.exec(output)?.[1], {
        message: 'the worker to serve its metrics',
        timeoutMs: 90_000,
        retryErrors: false,
      });
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      const run = await starter.runtime.startRun({ workflow: 'metrics-ok', input: {} });
      expect(await waitForRun(starter.runtime, run.id, ['succeeded', 'failed'], 60_000)).toMatchObject({ status: 'succeeded' });
      const { samples } = await scrape(url);
      expect(value(samples, 'tollgate_run_duration_seconds_count', { workflow: 'metrics-ok', outcome: 'succeeded' })).toBe(1);
      expect(value(samples, 'tollgate_step_duration_seconds_count', { workflow: 'metrics-ok', kind: 'step', outcome: 'succeeded' })).toBe(2);
      expect(value(samples, 'tollgate_queue_lag_seconds_count', { task: 'run-advance' })).toBeGreaterThanOrEqual(1);
      expect(value(samples, 'tollgate_runs', { workflow: 'metrics-ok', status: 'succeeded' })).toBe(1);
      expect(value(samples, 'tollgate_up')).toBe(1);
      // Only health and metrics: no chat route, no console.
      expect((await fetch(`${url}/console`)).status).toBe(404);
    } finally {
      child.kill('SIGTERM');
      await exited;
      await starter.stop();
      await own.close();
    }
  }, 180_000);
});
