/**
 * Recovery in seconds: a real `tollgate start` is SIGKILLed mid-step and started again, with
 * default liveness settings (WORKER_DEAD_AFTER_MS 8 s, a beat every 2 s).
 *
 * On the same machine, with a changed configuration: the restarted process knows the old one is
 * gone (its pid is free: see src/common/process-stamp.ts), so it adopts the new configuration
 * instead of refusing it with TG_CONFIG_CONFLICT, and resumes the run without waiting out the
 * heartbeat's window.
 *
 * On another machine (the killed process's heartbeat made to name another host, so only its age
 * can tell it is dead): the run resumes once the heartbeat is older than WORKER_DEAD_AFTER_MS, at
 * most 10 s after the kill.
 *
 * The times from the kill and from the restart to the resumed step are printed (figures for the
 * notes, not asserted: timings belong in the bench).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Runtime } from '../src/runtime/runtime.ts';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { startAppProcess, type AppProcess } from './helpers/app-process.ts';
import { createTestDb, TEST_AUDIT_ENV, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { poll } from './helpers/poll.ts';
import { waitForRun } from './helpers/runtime.ts';
import { hangsOnce } from './fixtures/recovery-project.ts';

const PROJECT = path.resolve(import.meta.dirname, 'fixtures/recovery-project.ts');

let db: TestDb;
let dir: string;
const apps: AppProcess[] = [];

beforeAll(async () => {
  db = await createTestDb();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-recovery-'));
});
/** Stops what a test left running gracefully (its heartbeat and configuration hold go with it), so the next test starts alone. */
afterEach(async () => {
  for (const a of apps.splice(0)) {
    a.kill('SIGTERM');
    await a.exited;
  }
});
afterAll(async () => {
  for (const a of apps) {
    a.kill('SIGKILL');
    await a.exited;
  }
  await db?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Exec {
  at: number;
  pid: number;
  step: string;
  attempt: number;
  key: string;
}
const execs = (file: string): Exec[] =>
  (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [at, pid, step, attempt, key] = l.split(' ');
      return { at: Number(at), pid: Number(pid), step: step as string, attempt: Number(attempt), key: key as string };
    });

/**
 * Each step ran once, but the interrupted one, which the second process ran again under the same
 * idempotency key.
 */
function expectResumedOnce(rows: ReturnType<typeof execs>, firstPid: number, secondPid: number): void {
  expect(rows.map((e) => `${e.step}:${e.attempt}:${e.pid === firstPid ? 'first' : e.pid === secondPid ? 'second' : '?'}`)).toEqual([
    'one:1:first',
    'in-flight:1:first',
    'in-flight:2:second',
    'after:1:second',
  ]);
  expect(new Set(rows.filter((e) => e.step === 'in-flight').map((e) => e.key)).size).toBe(1);
}

describe('a SIGKILLed `tollgate start` started again on the same machine', () => {
  it('adopts the changed configuration at once and resumes the interrupted run, re-running only the step that was in flight', async () => {
    const file = path.join(dir, 'exec.log');
    const env = (threshold: number) => ({
      ...TEST_AUDIT_ENV,
      DATABASE_URL: db.url,
      TOLLGATE_CONFIG: PROJECT,
      RECOVERY_EXEC_FILE: file,
      RECOVERY_THRESHOLD: String(threshold),
      // Default liveness: WORKER_DEAD_AFTER_MS and WORKER_POLL_INTERVAL_MS are not set.
      WORKER_DEAD_AFTER_MS: undefined,
      WORKER_POLL_INTERVAL_MS: undefined,
    });
    const first = await startAppProcess(env(1000));
    apps.push(first);
    const runtime = new Runtime({ pool: db.pool, registry: new WorkflowRegistry().register(hangsOnce), log: testLogger() });
    const run = await runtime.startRun({ workflow: 'hangs-once', input: {} });
    await poll(() => execs(file).some((e) => e.step === 'in-flight'), { message: 'the step to be in flight', timeoutMs: 30_000 });
    const digestBefore = (await db.pool.query<{ digest: string }>('SELECT digest FROM tollgate.deployment_config')).rows[0]?.digest;

    first.kill('SIGKILL');
    const killed = await first.exited;
    const restartedAt = Date.now();
    // Another configuration: refused with TG_CONFIG_CONFLICT for the liveness window before.
    const second = await startAppProcess(env(2000));
    apps.push(second);
    const listeningAt = Date.now();

    await waitForRun(runtime, run.id, 'succeeded', 30_000);
    const rows = execs(file);
    const resumed = rows.find((e) => e.step === 'in-flight' && e.attempt === 2);
    console.info(
      `recovery: SIGKILL → resumed step ${(resumed?.at ?? NaN) - killed.at} ms; restart → resumed ${(resumed?.at ?? NaN) - restartedAt} ms; ` +
        `listening → resumed ${(resumed?.at ?? NaN) - listeningAt} ms (WORKER_DEAD_AFTER_MS default 8000)`,
    );
    expectResumedOnce(rows, first.pid, second.pid);
    const digestAfter = (await db.pool.query<{ digest: string }>('SELECT digest FROM tollgate.deployment_config')).rows[0]?.digest;
    expect(digestAfter).not.toBe(digestBefore);
    expect((await runtime.getRun(run.id)).run.recovery_attempts).toBe(1);
  }, 120_000);
});

describe('a SIGKILLed `tollgate start` started again on another machine', () => {
  it('resumes the interrupted run once the heartbeat is stale, with the default WORKER_DEAD_AFTER_MS, each step once', async () => {
    const file = path.join(dir, 'exec-elsewhere.log');
    const env = {
      ...TEST_AUDIT_ENV,
      DATABASE_URL: db.url,
      TOLLGATE_CONFIG: PROJECT,
      RECOVERY_EXEC_FILE: file,
      // Default liveness: WORKER_DEAD_AFTER_MS and WORKER_POLL_INTERVAL_MS are not set.
      WORKER_DEAD_AFTER_MS: undefined,
      WORKER_POLL_INTERVAL_MS: undefined,
    };
    const first = await startAppProcess(env);
    apps.push(first);
    const runtime = new Runtime({ pool: db.pool, registry: new WorkflowRegistry().register(hangsOnce), log: testLogger() });
    const run = await runtime.startRun({ workflow: 'hangs-once', input: {} });
    await poll(() => execs(file).some((e) => e.step === 'in-flight'), { message: 'the step to be in flight', timeoutMs: 30_000 });

    first.kill('SIGKILL');
    const killed = await first.exited;
    // Its rows now name another machine: no process here can tell it is gone but by their age.
    const moved = await db.pool.query(`UPDATE tollgate.worker_heartbeats SET hostname = 'elsewhere.example' WHERE pid = $1`, [first.pid]);
    expect(moved.rowCount).toBeGreaterThan(0);
    await db.pool.query(`UPDATE tollgate.deployment_config_holders SET hostname = 'elsewhere.example' WHERE pid = $1`, [first.pid]);
    const { rows: beats } = await db.pool.query<{ process_id: string; ms: number }>(
      `SELECT process_id, extract(epoch FROM beat_at) * 1000 AS ms FROM tollgate.worker_heartbeats WHERE pid = $1`,
      [first.pid],
    );
    const lastBeat = Math.max(...beats.map((b) => Number(b.ms)));

    const restartedAt = Date.now();
    const second = await startAppProcess(env);
    apps.push(second);
    const listeningAt = Date.now();

    await waitForRun(runtime, run.id, 'succeeded', 60_000);
    const rows = execs(file);
    const resumed = rows.find((e) => e.step === 'in-flight' && e.attempt === 2);
    const at = resumed?.at ?? NaN;
    const reaped = second.logLines().find((l) => l.msg === 'unlocked the jobs of dead workers');
    console.info(
      `recovery elsewhere: SIGKILL → resumed step ${at - killed.at} ms; restart → resumed ${at - restartedAt} ms; listening → resumed ${at - listeningAt} ms; ` +
        `last beat → resumed ${at - lastBeat} ms; reaped → resumed ${at - Number(reaped?.time)} ms (WORKER_DEAD_AFTER_MS default 8000)`,
    );
    expectResumedOnce(rows, first.pid, second.pid);
    const detail = await runtime.getRun(run.id);
    expect(detail.run.recovery_attempts).toBe(1);
    // Judged by age, not as a process of this machine that is gone.
    expect(reaped).toMatchObject({ goneHere: [], processes: beats.map((b) => b.process_id) });
  }, 120_000);
});
