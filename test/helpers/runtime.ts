/**
 * A runtime and a real Graphile Worker on a test database, with fast polling so scheduled
 * wake-ups are found quickly. `waitForRun` polls the run row until it reaches a status.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { Runtime } from '../../src/runtime/runtime.ts';
import { WorkflowRegistry } from '../../src/runtime/registry.ts';
import type { WorkflowDefinition } from '../../src/runtime/workflow.ts';
import type { RunRow, RunStatus } from '../../src/db/queries/runs.ts';
import { newProcessId, startWorker, type WorkerHandle } from '../../src/worker/worker.ts';
import { taskList } from '../../jobs/index.ts';
import { createTestDb, type TestDb } from './db.ts';
import type { ProjectConfig } from '../../src/config/project-config.ts';
import type { ToolRegistry } from '../../src/tools/registry.ts';
import type { ModelClient } from '../../src/model/types.ts';
import { testLogger } from './log.ts';
import { poll } from './poll.ts';

export interface TestRuntime {
  runtime: Runtime;
  registry: WorkflowRegistry;
  worker: WorkerHandle | undefined;
  startWorker(): Promise<WorkerHandle>;
  stop(): Promise<void>;
}

export async function createTestRuntime(
  db: TestDb,
  workflows: WorkflowDefinition[],
  opts: {
    worker?: boolean;
    inlineWaitMaxMs?: number;
    concurrency?: number;
    project?: ProjectConfig;
    tools?: ToolRegistry;
    lockWaitMs?: number;
    model?: ModelClient;
  } = {},
): Promise<TestRuntime> {
  const registry = new WorkflowRegistry().register(...workflows);
  const log = testLogger();
  const runtime = new Runtime({
    pool: db.pool,
    registry,
    log,
    inlineWaitMaxMs: opts.inlineWaitMaxMs ?? 2000,
    project: opts.project,
    tools: opts.tools,
    lockWaitMs: opts.lockWaitMs,
    model: opts.model,
  });
  const workers: WorkerHandle[] = [];
  const start = async () => {
    const processId = newProcessId();
    const w = await startWorker({
      pool: db.pool,
      log,
      tasks: taskList({ runtime, processId }),
      concurrency: opts.concurrency ?? 4,
      pollIntervalMs: 100,
      deadAfterMs: 3000,
      processId,
    });
    workers.push(w);
    return w;
  };
  const worker = opts.worker === false ? undefined : await start();
  return {
    runtime,
    registry,
    worker,
    startWorker: start,
    stop: async () => {
      await Promise.all(workers.map((w) => w.stop()));
    },
  };
}

export async function waitForRun(runtime: Runtime, runId: string, statuses: RunStatus | RunStatus[], timeoutMs = 20_000): Promise<RunRow> {
  const want = Array.isArray(statuses) ? statuses : [statuses];
  let last: RunRow | undefined;
  return poll(
    async () => {
      last = (await runtime.getRun(runId)).run;
      return want.includes(last.status) && last;
    },
    { message: `run ${runId} to reach ${want.join('|')}`, detail: () => `It is ${last?.status}.`, timeoutMs, retryErrors: false },
  );
}

/**
 * A test file's own database, and the runtimes its tests start, each stopped when its test ends:
 * a test's worker knows only that test's workflows and must not take the next test's jobs.
 * Call at the top level of the file.
 */
export function useTestRuntimes(): {
  readonly db: TestDb;
  start(workflows: WorkflowDefinition[], opts?: Parameters<typeof createTestRuntime>[2]): Promise<TestRuntime>;
} {
  let db: TestDb | undefined;
  const started: TestRuntime[] = [];
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((r) => r.stop()));
  });
  afterAll(async () => {
    await db?.close();
  });
  return {
    get db(): TestDb {
      if (!db) throw new Error('useTestRuntimes(): the database is created in beforeAll; use it inside tests and hooks.');
      return db;
    },
    async start(workflows, opts) {
      const r = await createTestRuntime(this.db, workflows, opts);
      started.push(r);
      return r;
    },
  };
}
