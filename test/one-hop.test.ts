/**
 * One hop from a click to the run's next step (src/worker/one-hop.ts): the `chat-intent` job that
 * records a decision, a Retry or a Cancel also advances the run in the same worker turn, the
 * run's advance job held (locked under the worker's id) as the crash-safe fallback.
 *
 * - In-process: a worker that does not run `run-advance` jobs at all still moves a run on after
 *   an Approve, a Retry and a Cancel click (the hop); a burst of clicks on one quorum records each
 *   decision once, runs each step once, and `tollgate audit verify` passes after it.
 * - With real worker processes (test/fixtures/worker-process.ts): a worker SIGKILLs itself right
 *   after the decision's transaction committed, before the inline advance; a second worker takes
 *   over the held advance job and every step runs once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { TaskList } from 'graphile-worker';
import { createChat, type Chat, type Where } from '../src/chat/index.ts';
import { NonRetriableError } from '../src/common/errors.ts';
import type { Principal } from '../src/common/principals.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { defineWorkflow } from '../src/runtime/workflow.ts';
import { newProcessId, startWorker, type WorkerHandle } from '../src/worker/worker.ts';
import { taskList } from '../jobs/index.ts';
import { memoryPlatform } from './fakes/chat-memory.ts';
import { EXEC_TABLE_DDL, recoveryWorkflows, type ExecRow } from './fixtures/workflows.ts';
import { inProcessCli } from './helpers/cli.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { intentsCarriedOut } from './helpers/intents.ts';
import { testLogger } from './helpers/log.ts';
import { poll } from './helpers/poll.ts';
import { startWorkerProcess, type WorkerProcess } from './helpers/processes.ts';
import { waitForRun } from './helpers/runtime.ts';

const REQ: Principal = { platform: 'memory', tenant: 'W1', user: 'REQ' };
const approver = (i: number): Principal => ({ platform: 'memory', tenant: 'W1', user: `A${i}` });
const key = (p: Principal) => `${p.platform}:${p.tenant}:${p.user}`;
const room: Where = { platform: 'memory', tenant: 'W1', conversation: 'room-1', thread: null };

/** Fails its step while `broken` is set (in this process), for the Retry click. */
let broken = true;
const flaky = defineWorkflow({
  name: 'flaky',
  version: 1,
  description: 'one step that fails for good while the test says so, then one more',
  input: z.object({}),
  run: async (ctx) => {
    await ctx.step('one', () => {
      if (broken) throw new NonRetriableError('broken for the test');
      return 1;
    });
    return ctx.step('two', () => 2);
  },
});

let db: TestDb;
let runtime: Runtime;
let chat: Chat;
const workers: WorkerHandle[] = [];
const procs: WorkerProcess[] = [];

beforeAll(async () => {
  db = await createTestDb();
  await db.pool.query(EXEC_TABLE_DDL);
  const log = testLogger();
  const registry = new WorkflowRegistry().register(...recoveryWorkflows(db.pool), flaky);
  runtime = new Runtime({ pool: db.pool, registry, log });
  chat = createChat({ pool: db.pool, runtime, registry, log, platforms: [memoryPlatform()] });
});
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop();
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.exited;
  }
});
afterAll(async () => {
  await db?.close();
});

async function inProcessWorker(tasks: (all: TaskList) => TaskList = (all) => all): Promise<void> {
  const processId = newProcessId();
  const all = taskList({ runtime, processId, chat: chat.deliverer, intents: chat.core });
  workers.push(await startWorker({ pool: db.pool, log: testLogger(), tasks: tasks(all), concurrency: 4, pollIntervalMs: 100, deadAfterMs: 3000, processId }));
}

/** A `gated` run advanced (here, by hand) to its approval; returns the run and its approval's id. */
async function gatedRun(approvers: Principal[], quorum = 1): Promise<{ runId: string; approvalId: string }> {
  const run = await runtime.startRun({ workflow: 'gated', input: { approvers: approvers.map(key), quorum }, requester: REQ, origin: { platform: 'cli' } });
  expect(await runtime.advance(run.id, 'test')).toBe('waiting');
  const { rows } = await db.pool.query<{ id: string }>(`SELECT id FROM tollgate.approvals WHERE run_id = $1 AND status = 'pending'`, [run.id]);
  return { runId: run.id, approvalId: rows[0]?.id as string };
}

/** A click as the Slack adapter records it: a `chat-intent` job, carried out by a worker after the ack. */
function approve(approvalId: string, actor: Principal) {
  return chat.core.submit({ kind: 'decide', approvalId, decision: 'approve', actor, explainAt: room, carryOut: 'after-ack' });
}
function operate(action: 'retry' | 'cancel', runId: string, n: number) {
  return chat.core.submit({
    kind: 'operate',
    action,
    runId,
    actor: REQ,
    key: { key: `${action}:${runId}:${n}`, kind: 'action' },
    explainAt: room,
    carryOut: 'after-ack',
  });
}

async function execRows(runId: string): Promise<ExecRow[]> {
  return (await db.pool.query<ExecRow>('SELECT * FROM test_exec WHERE run_id = $1 ORDER BY id', [runId])).rows;
}
/** The run's advance jobs, and who holds each. */
async function heldJobs(runId: string): Promise<{ locked_by: string | null }[]> {
  const { rows } = await db.pool.query<{ locked_by: string | null }>(
    `SELECT j.locked_by FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
      WHERE t.identifier = 'run-advance' AND j.payload->>'runId' = $1`,
    [runId],
  );
  return rows;
}
async function advanceJobs(runId: string): Promise<number> {
  return (await heldJobs(runId)).length;
}

describe('one hop from a click to the next step', () => {
  it('moves a run on after Approve, Retry and Cancel clicks in the job that records them, with no worker running advance jobs', async () => {
    // A worker that runs everything but `run-advance`: only the click's own job can move the run.
    await inProcessWorker((all) => Object.fromEntries(Object.entries(all).filter(([name]) => name !== 'run-advance')));

    const gated = await gatedRun([approver(1)]);
    await approve(gated.approvalId, approver(1));
    await waitForRun(runtime, gated.runId, 'succeeded');
    expect((await execRows(gated.runId)).map((r) => r.step)).toEqual(['before', 'after', 'last']);
    // The held advance job was the fallback; the run advanced inline, so it is gone.
    expect(await advanceJobs(gated.runId)).toBe(0);

    broken = true;
    const run = await runtime.startRun({ workflow: 'flaky', input: {}, requester: REQ, origin: { platform: 'cli' } });
    await runtime.advance(run.id, 'test');
    await waitForRun(runtime, run.id, 'failed');
    broken = false;
    await operate('retry', run.id, 1);
    await waitForRun(runtime, run.id, 'succeeded');
    expect(await advanceJobs(run.id)).toBe(0);

    const toCancel = await gatedRun([approver(1)]);
    await operate('cancel', toCancel.runId, 1);
    await waitForRun(runtime, toCancel.runId, 'cancelled');
    expect(await advanceJobs(toCancel.runId)).toBe(0);
  });

  it('records each decision of a burst of clicks on one quorum once, runs each step once, and the audit chain verifies', async () => {
    await inProcessWorker();
    const approvers = Array.from({ length: 6 }, (_, i) => approver(i + 1));
    const { runId, approvalId } = await gatedRun(approvers, 3);
    // Every approver clicks twice, all at once.
    await Promise.all([...approvers, ...approvers].map((a) => approve(approvalId, a)));
    await waitForRun(runtime, runId, 'succeeded');
    await intentsCarriedOut(db.pool);

    const { rows: decided } = await db.pool.query<{ principal: string; n: string }>(
      'SELECT principal, count(*) AS n FROM tollgate.approval_decisions WHERE approval_id = $1 GROUP BY principal',
      [approvalId],
    );
    // Clicks that came after the quorum was met are refused (already resolved); none is recorded twice.
    expect(decided.length).toBeGreaterThanOrEqual(3);
    expect(decided.every((d) => Number(d.n) === 1)).toBe(true);
    const { rows: resolved } = await db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM tollgate.events WHERE run_id = $1 AND type = 'approval.approved'`,
      [runId],
    );
    expect(Number(resolved[0]?.n)).toBe(1);
    expect((await execRows(runId)).map((r) => r.step)).toEqual(['before', 'after', 'last']);

    const verify = await inProcessCli(() => db)('audit', 'verify');
    expect(verify.code, verify.out + verify.err).toBe(0);
  });
});

describe('a crash between the decision and the inline advance', () => {
  it('loses nothing: the held advance job is taken over by another worker and every step runs once', async () => {
    const crashing = await startWorkerProcess(db.url, { WITH_CHAT: '1', CRASH_BEFORE_INLINE_ADVANCE: '1', WORKER_DEAD_AFTER_MS: '60000' });
    procs.push(crashing);
    const { runId, approvalId } = await gatedRun([approver(1)]);
    // The run's start queued an advance job, which this worker takes (the run already waits): let it
    // go first, so the crash below is the click's, not one of a plain advance racing the click.
    await poll(async () => (await advanceJobs(runId)) === 0, { message: 'the start advance job to be taken' });
    await approve(approvalId, approver(1));
    await crashing.exited; // it killed itself once the decision had committed
    const { rows: decided } = await db.pool.query('SELECT 1 FROM tollgate.approval_decisions WHERE approval_id = $1', [approvalId]);
    expect(decided).toHaveLength(1);
    expect((await runtime.getRun(runId)).run.status).toBe('waiting');
    // The held job is still locked by the dead worker.
    expect((await heldJobs(runId)).map((r) => r.locked_by !== null)).toEqual([true]);

    // A new worker on this machine (its liveness window a minute: only the dead pid tells).
    const next = await startWorkerProcess(db.url, { WITH_CHAT: '1', WORKER_DEAD_AFTER_MS: '60000' });
    procs.push(next);
    await waitForRun(runtime, runId, 'succeeded', 30_000);
    const rows = await execRows(runId);
    expect(rows.map((r) => r.step)).toEqual(['before', 'after', 'last']);
    expect(rows.filter((r) => r.step !== 'before').every((r) => r.pid === next.pid)).toBe(true);
    await poll(async () => (await advanceJobs(runId)) === 0, { message: 'no advance job left' });
    const { rows: again } = await db.pool.query('SELECT 1 FROM tollgate.approval_decisions WHERE approval_id = $1', [approvalId]);
    expect(again).toHaveLength(1);
  }, 90_000);
});
