/**
 * The chat outbox without a worker, so each test drives deliveries itself and can stop them at
 * the point that matters: a delivery waiting for another's lock, a job key race, stored origins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createChat, type Chat } from '../src/chat/index.ts';
import { scheduleReminder, REMIND_TASK } from '../src/db/queries/chat-outbox.ts';
import { parseCommand } from '../src/intents/command.ts';
import type { Principal } from '../src/common/principals.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { defineWorkflow } from '../src/runtime/workflow.ts';
import type { ApprovalView } from '../src/views/approval-view.ts';
import { memoryPlatform, type MemoryPlatform } from './fakes/chat-memory.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { poll } from './helpers/poll.ts';

const who = (user: string): Principal => ({ platform: 'memory', tenant: 'W1', user });
const project = parseProjectConfig({ groups: { approvers: ['memory:W1:A1'] } });

const gated = defineWorkflow({
  name: 'gated',
  version: 1,
  description: 'One approver',
  input: z.object({}),
  run: async (ctx) => (await ctx.approval('ok', { policy: { groups: ['approvers'] }, summary: 'Go ahead?', params: {}, timeout: '1h' })).status,
});

let db: TestDb;
let runtime: Runtime;
let chat: Chat;
let mem: MemoryPlatform;

beforeAll(async () => {
  db = await createTestDb();
  const log = testLogger();
  const registry = new WorkflowRegistry().register(gated);
  runtime = new Runtime({ pool: db.pool, registry, log, project });
  mem = memoryPlatform();
  chat = createChat({ pool: db.pool, runtime, registry, log, platforms: [mem] });
});
afterAll(async () => {
  await db?.close();
});

/** Starts `gated` from the memory platform and advances it (no worker) until its gate waits. */
async function pendingApproval(conversation: string): Promise<{ runId: string; approvalId: string }> {
  const r = await chat.core.submit({
    kind: 'command',
    command: parseCommand('run gated'),
    actor: who('REQ'),
    where: { platform: 'memory', tenant: 'W1', conversation, thread: null },
    key: { key: `cmd:${conversation}`, kind: 'command' },
    replyVia: 'return',
  });
  const runId = r.runId!;
  await runtime.advance(runId, 'test');
  const { rows } = await db.pool.query<{ id: string }>(`SELECT id FROM tollgate.approvals WHERE run_id = $1`, [runId]);
  return { runId, approvalId: rows[0]!.id };
}

describe('approval copies', () => {
  it('a delivery that waited for the copies lock shows the state after the wait, never the older one it would have read before', async () => {
    const { runId, approvalId } = await pendingApproval('room-stale');
    await chat.deliverer.deliverRun(runId);
    await chat.deliverer.deliverApproval(approvalId);
    const dm = mem.messagesIn('dm:A1').find((m) => m.view.kind === 'approval');
    expect((dm?.view as { approval: ApprovalView }).approval.status).toBe('pending');

    // Another delivery of this approval is in the middle of its work: it holds the approval's
    // lock and its rows. A second delivery starts meanwhile and has to wait.
    const other = await db.pool.connect();
    await other.query('BEGIN');
    await other.query(`SELECT pg_advisory_xact_lock(hashtextextended('chat:apr:' || $1, 0))`, [approvalId]);
    await other.query(`SELECT id FROM tollgate.chat_messages WHERE approval_id = $1 FOR UPDATE`, [approvalId]);
    const waiting = chat.deliverer.deliverApproval(approvalId);
    await poll(
      async () => {
        const { rows } = await db.pool.query(`SELECT 1 FROM pg_locks WHERE NOT granted`);
        return rows.length > 0;
      },
      { message: 'the second delivery to wait for the lock' },
    );
    // While it waits, the approver decides.
    expect((await runtime.decide(approvalId, who('A1'), 'approve', undefined, { via: 'memory' })).kind).toBe('recorded');
    await other.query('COMMIT');
    other.release();

    expect(await waiting).toBe('updated');
    for (const m of [...mem.messagesIn('dm:A1'), ...mem.messagesIn('room-stale').filter((x) => x.view.kind === 'approval')]) {
      expect((m.view as { approval: ApprovalView }).approval.status).toBe('approved');
    }
  });

  it('a reminder is never lost to the job key race: when add_job adds nothing, a reminder without a key is added', async () => {
    const { approvalId } = await pendingApproval('room-remind');
    const at1 = new Date(Date.now() + 3_600_000);
    await scheduleReminder(db.pool, approvalId, at1);
    // Simulate a worker locking the pending reminder between add_job's two statements (after the
    // one that clears the keys of locked jobs, before the insert): its ON CONFLICT update then
    // skips the locked job and add_job returns no job.
    await db.pool.query(`
      CREATE FUNCTION public.race_lock_reminder() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF pg_trigger_depth() = 1 THEN
          UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = 'racing-worker' WHERE key = 'chat:remind:${approvalId}';
        END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER race_reminder AFTER UPDATE ON graphile_worker._private_jobs
        FOR EACH STATEMENT EXECUTE FUNCTION public.race_lock_reminder();`);
    const at2 = new Date(Date.now() + 1_800_000);
    try {
      await scheduleReminder(db.pool, approvalId, at2);
    } finally {
      await db.pool.query(`DROP TRIGGER race_reminder ON graphile_worker._private_jobs; DROP FUNCTION public.race_lock_reminder();`);
    }
    const { rows } = await db.pool.query<{ run_at: Date }>(
      `SELECT j.run_at FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
       WHERE t.identifier = $1 AND j.payload->>'approvalId' = $2 AND j.locked_at IS NULL`,
      [REMIND_TASK, approvalId],
    );
    expect(rows.map((r) => r.run_at.getTime())).toEqual([at2.getTime()]);
  });
});

describe('run origins', () => {
  it('are one typed shape: the CLI is {platform: "cli"} and is no chat run; a chat origin is listed for delivery; anything else is refused, saying what to give', async () => {
    const cli = await runtime.startRun({ workflow: 'gated', input: {}, origin: { platform: 'cli' } });
    const fromChat = await runtime.startRun({ workflow: 'gated', input: {}, origin: { platform: 'memory', tenant: 'W1', conversation: 'room', thread: null } });
    const listed = await db.pool.query<{ run_id: string }>(`SELECT run_id FROM tollgate.chat_runs WHERE run_id = ANY($1)`, [[cli.id, fromChat.id]]);
    expect(listed.rows.map((r) => r.run_id)).toEqual([fromChat.id]);
    expect(cli.origin).toEqual({ platform: 'cli' });
    await expect(runtime.startRun({ workflow: 'gated', input: {}, origin: { kind: 'cli' } as never })).rejects.toThrow(
      /origin \{"kind":"cli"\} is not one Tollgate knows/,
    );
    await expect(runtime.startRun({ workflow: 'gated', input: {}, origin: { platform: 'slack', team: 'T1', channel: 'C1' } as never })).rejects.toMatchObject({
      code: 'TG_ORIGIN_INVALID',
    });
  });
});
