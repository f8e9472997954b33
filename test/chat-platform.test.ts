/**
 * The chat layer with a third platform: an in-memory `ChatPlatform` (test/fakes/chat-memory.ts),
 * added the way a developer adds one (a folder holding an index that exports `chatPlatform`,
 * written to a temporary directory and found there by bots/index.ts `loadChatPlatforms`), composed
 * as src/app.ts composeCore does, beside nothing else, on the real database and a real worker. A
 * run started through it gets its run message, approval copies (thread and DMs), live tallies and
 * updates; nothing in the core knows the platform exists.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadChatPlatforms } from '../bots/index.ts';
import { taskList } from '../jobs/index.ts';
import { createChat, type Chat, type ChatAdapter, type ChatPlatformEntry } from '../src/chat/index.ts';
import type { Where } from '../src/chat/outbox.ts';
import { parseCommand } from '../src/intents/command.ts';
import { loadConfig } from '../src/config/config.ts';
import type { Principal } from '../src/common/principals.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import type { ApprovalView } from '../src/views/approval-view.ts';
import type { RunView } from '../src/views/run-view.ts';
import { newProcessId, startWorker, type WorkerHandle } from '../src/worker/worker.ts';
import type { MemoryMessage, MemoryPlatform } from './fakes/chat-memory.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { waitForRun } from './helpers/runtime.ts';
import { poll } from './helpers/poll.ts';

const who = (user: string): Principal => ({ platform: 'memory', tenant: 'W1', user });
const REQ = who('REQ');
const [A1, A2] = [who('A1'), who('A2')];
const OUTSIDER = who('OUT');

const project = parseProjectConfig({ groups: { approvers: ['memory:W1:A1', 'memory:W1:A2', 'memory:W1:A3'] } });

const twoOfThree = defineWorkflow({
  name: 'two-of-three',
  version: 1,
  description: 'A gate two of the three approvers must approve',
  input: z.object({}),
  run: async (ctx) => {
    await ctx.step('prepare', () => 1);
    const gate = await ctx.approval('sign-off', { policy: { groups: ['approvers'], quorum: 2 }, summary: 'Sign off the plan', params: { plan: 'B' } });
    return ctx.step('carry-out', () => gate.status);
  },
});

const steps = defineWorkflow({
  name: 'steps',
  version: 1,
  description: 'Many short steps',
  input: z.object({ n: z.coerce.number().int().default(40) }),
  run: async (ctx) => {
    for (let i = 1; i <= ctx.input.n; i++) await ctx.step(`s${i}`, () => new Promise((r) => setTimeout(() => r(i), 40)));
    return 'ok';
  },
});

/** What a developer adding the memory platform writes: one folder, holding an index that exports `chatPlatform`. */
const MEMORY_INDEX = `import type { ChatPlatformEntry } from '${new URL('../src/chat/index.ts', import.meta.url).href}';
import { memoryPlatform } from '${new URL('./fakes/chat-memory.ts', import.meta.url).href}';

export const chatPlatform: ChatPlatformEntry = {
  name: 'memory',
  create: () => ({ platform: memoryPlatform(), mount: () => {}, start: async () => {}, stop: async () => {} }),
  unconfigured: { status: 503, path: '/memory/events', message: 'The memory platform needs no settings.' },
};
`;

const dirs: string[] = [];
/** A fresh directory of platform folders, each `{ folder: its index.ts }`, as a directory URL for `loadChatPlatforms`. */
function platformsDir(folders: Record<string, string>): URL {
  const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-platforms-'));
  dirs.push(dir);
  for (const [folder, index] of Object.entries(folders)) {
    mkdirSync(path.join(dir, folder));
    writeFileSync(path.join(dir, folder, 'index.ts'), index);
  }
  return pathToFileURL(`${dir}/`);
}

let db: TestDb;
let runtime: Runtime;
let chat: Chat;
let found: ChatPlatformEntry[];
let adapters: ChatAdapter[];
let mem: MemoryPlatform;
let worker: WorkerHandle;

beforeAll(async () => {
  db = await createTestDb();
  const log = testLogger();
  const registry = new WorkflowRegistry().register(...([twoOfThree, steps] as unknown as WorkflowDefinition[]));
  runtime = new Runtime({ pool: db.pool, registry, log, project, inlineWaitMaxMs: 200 });
  // As src/app.ts composeCore does: each found platform's adapter, and the chat layer over their platforms.
  found = await loadChatPlatforms(platformsDir({ memory: MEMORY_INDEX }));
  adapters = found.map((p) => p.create({ config: loadConfig({}), core: () => chat.core, log })).filter((a): a is ChatAdapter => a !== undefined);
  chat = createChat({ pool: db.pool, runtime, registry, log, platforms: adapters.map((a) => a.platform) });
  mem = adapters[0]?.platform as MemoryPlatform; // the folder's index built it with memoryPlatform()
  const processId = newProcessId();
  worker = await startWorker({
    pool: db.pool,
    log,
    tasks: taskList({ runtime, processId, chat: chat.deliverer, intents: chat.core }),
    concurrency: 4,
    pollIntervalMs: 100,
    deadAfterMs: 3000,
    processId,
  });
});
afterAll(async () => {
  await worker?.stop();
  await db?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const room = (name: string): Where => ({ platform: 'memory', tenant: 'W1', conversation: name, thread: null });

async function start(text: string, conversation: string): Promise<string> {
  const r = await chat.core.submit({
    kind: 'command',
    command: parseCommand(text),
    actor: REQ,
    where: room(conversation),
    key: { key: `cmd:${conversation}`, kind: 'command' },
    replyVia: 'return',
  });
  if (!r.runId) throw new Error(`no run started: ${JSON.stringify(r.reply)}`);
  return r.runId;
}

const runOf = (m: MemoryMessage | undefined) => (m?.view.kind === 'run' ? (m.view as { run: RunView }).run : undefined);
const approvalOf = (m: MemoryMessage | undefined): ApprovalView | undefined => {
  if (m?.view.kind === 'approval') return (m.view as { approval: ApprovalView }).approval;
  return runOf(m)?.approvals[0];
};

/** Every copy of the approval: the run message, the thread copy, and each approver's DM. */
function copies(conversation: string): MemoryMessage[] {
  const inRoom = mem.messagesIn(conversation).filter((m) => !m.visibleTo);
  const dms = ['A1', 'A2', 'A3'].flatMap((u) => mem.messagesIn(`dm:${u}`).filter((m) => m.view.kind === 'approval' && !m.thread));
  return [...inRoom, ...dms];
}

describe('a third, in-memory chat platform', () => {
  it('is a new folder and nothing else: loadChatPlatforms finds it, its adapter is built, and a run started from it gets its message through the outbox', async () => {
    expect(found.map((p) => p.name)).toEqual(['memory']);
    expect(adapters.map((a) => a.platform.name)).toEqual(['memory']);
    const runId = await start('run steps n=1', 'room-0');
    await waitForRun(runtime, runId, 'succeeded');
    const runMsg = await poll(() => mem.messagesIn('room-0').find((m) => runOf(m)?.status === 'succeeded'), {
      message: 'the run message, posted to the platform',
    });
    expect(runOf(runMsg)?.runId).toBe(runId);
    expect(mem.calls.some((c) => c.op === 'post' && c.conversation === 'room-0')).toBe(true);
  });

  it('refuses a folder whose index exports no chatPlatform, with what to do', async () => {
    const dir = platformsDir({ memory: MEMORY_INDEX, plain: 'export const platform = {};\n' });
    const where = path.basename(fileURLToPath(dir));
    await expect(loadChatPlatforms(dir)).rejects.toMatchObject({
      code: 'TG_CONFIG_INVALID',
      message: `${where}/plain/index.ts exports no chatPlatform; every folder under ${where}/ is a chat platform and must.`,
    });
  });

  it('a run started through it gets its run message, approval copies in the thread and in each DM, and every update, with the live tally on every copy', async () => {
    const runId = await start('run two-of-three', 'room-1');
    await waitForRun(runtime, runId, 'waiting');

    const runMsg = await poll(() => mem.messagesIn('room-1').find((m) => runOf(m)?.status === 'waiting' && runOf(m)?.approvals.length === 1), {
      message: 'the run message with its approval',
    });
    const thread = await poll(() => mem.messagesIn('room-1').find((m) => m.thread === runMsg.id && m.view.kind === 'approval'), { message: 'the thread copy' });
    expect(approvalOf(thread)?.summary).toBe('Sign off the plan');
    for (const u of ['A1', 'A2', 'A3']) await poll(() => mem.messagesIn(`dm:${u}`).find((m) => m.view.kind === 'approval'), { message: `the DM to ${u}` });
    expect(mem.messagesIn('dm:REQ')).toHaveLength(0); // the requester is not an approver
    // Approvers' home pages list what waits for them.
    await poll(() => mem.homes.get('memory:W1:A3')?.approvals.some((a) => a.runId === runId), { message: 'A3 home page with the approval' });

    // Before any decision every copy shows the rule (2 needed) and an empty tally.
    await poll(() => copies('room-1').length === 5 && copies('room-1').every((m) => approvalOf(m)?.required === 2 && approvalOf(m)?.approvals === 0), {
      message: 'five copies, none decided',
    });

    // A1 approves: every copy shows 1 of 2, naming A1.
    const first = await chat.core.submit({ kind: 'decide', approvalId: approvalOf(thread)!.id, decision: 'approve', actor: A1, explainAt: room('dm:A1') });
    expect(first.decided?.kind).toBe('recorded');
    await poll(
      () =>
        copies('room-1').every(
          (m) =>
            approvalOf(m)?.approvals === 1 &&
            approvalOf(m)
              ?.decisions.map((d) => d.principal)
              .join() === 'memory:W1:A1',
        ),
      { message: 'every copy to show the tally 1 of 2' },
    );

    // A2 approves: the run resumes; every copy names both deciders, without pending status.
    await chat.core.submit({ kind: 'decide', approvalId: approvalOf(thread)!.id, decision: 'approve', actor: A2, explainAt: room('dm:A2') });
    await waitForRun(runtime, runId, 'succeeded');
    await poll(
      () =>
        copies('room-1').every(
          (m) =>
            approvalOf(m)?.status === 'approved' &&
            approvalOf(m)
              ?.decisions.map((d) => d.principal)
              .join() === 'memory:W1:A1,memory:W1:A2',
        ),
      { message: 'every copy to name both approvers' },
    );
    await poll(() => runOf(mem.message('room-1', runMsg.id))?.status === 'succeeded', { message: 'the run message to show success' });
    // Updated in place: one run message in the room, posted once.
    expect(mem.messagesIn('room-1').filter((m) => m.view.kind === 'run')).toHaveLength(1);
  });

  it('a refused decision changes nothing and is explained to the clicker alone, through the outbox', async () => {
    const runId = await start('run two-of-three', 'room-2');
    await waitForRun(runtime, runId, 'waiting');
    const { rows } = await db.pool.query<{ id: string }>(`SELECT id FROM tollgate.approvals WHERE run_id = $1`, [runId]);
    const r = await chat.core.submit({ kind: 'decide', approvalId: rows[0]!.id, decision: 'approve', actor: OUTSIDER, explainAt: room('room-2') });
    expect(r.decided?.kind).toBe('not_allowed');
    const told = await poll(() => mem.messagesIn('room-2').find((m) => m.visibleTo === 'memory:W1:OUT'), { message: 'the explanation' });
    expect(told.view).toMatchObject({ kind: 'notice' });
    expect(JSON.stringify(told.view)).toContain('Not allowed');
    await runtime.cancel(runId, null);
  });

  it('keeps at most one pending delivery job per message while the platform is down, and catches up once it is back', async () => {
    mem.down(true);
    const runId = await start('run steps n=40', 'room-3');
    const jobs = async () => {
      const { rows } = await db.pool.query<{ pending: string; dead: string }>(
        `SELECT count(*) FILTER (WHERE j.locked_at IS NULL AND j.attempts < j.max_attempts) AS pending,
                count(*) FILTER (WHERE j.attempts >= j.max_attempts AND j.locked_at IS NULL) AS dead
         FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
         WHERE t.identifier = 'chat-deliver' AND j.payload->>'runId' = $1`,
        [runId],
      );
      return { pending: Number(rows[0]?.pending), dead: Number(rows[0]?.dead) };
    };
    let most = 0;
    let dead = 0;
    // Sample for as long as the run makes events (about 40 steps × 40 ms) with the platform down.
    await poll(
      async () => {
        const j = await jobs();
        most = Math.max(most, j.pending);
        dead = Math.max(dead, j.dead);
        return (await runtime.getRun(runId)).run.status === 'succeeded';
      },
      { message: 'the run to succeed with the platform down', timeoutMs: 60_000, intervalMs: 20, retryErrors: false },
    );
    expect(mem.calls.filter((c) => c.conversation === 'room-3').length).toBeGreaterThan(0); // it did try
    expect(most).toBeLessThanOrEqual(1);
    expect(dead).toBe(0);
    mem.down(false);
    const final = await poll(() => mem.messagesIn('room-3').find((m) => runOf(m)?.status === 'succeeded'), {
      message: 'the final state once the platform is back',
      timeoutMs: 30_000,
    });
    expect(runOf(final)?.steps).toHaveLength(40);
    expect(mem.messagesIn('room-3').filter((m) => m.view.kind === 'run')).toHaveLength(1);
    await poll(async () => (await jobs()).pending === 0 && (await jobs()).dead === 0, { message: 'no delivery job left behind' });
  });
});
