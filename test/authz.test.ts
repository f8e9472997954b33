/**
 * Operators are authenticated, not claimed (issue 9, item 4). The runtime authorises every
 * operation for every caller: the CLI acts as the OS user and may act as another principal only as
 * configured, recording the OS user with what it does; cancel and retry are for the requester or
 * an operator, whoever asks; a run's status is not shown to another tenant.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createChat } from '../src/chat/index.ts';
import { main } from '../src/cli/main.ts';
import { parseCommand } from '../src/intents/command.ts';
import { parsePrincipal } from '../src/common/principals.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { memoryPlatform } from './fakes/chat-memory.ts';
import { testLogger } from './helpers/log.ts';
import { useTestRuntimes, waitForRun } from './helpers/runtime.ts';
import { TEST_AUDIT_ENV } from './helpers/db.ts';

const files = useTestRuntimes();

/** This shell's own principal. */
const ME = `cli:${os.hostname()}:${os.userInfo().username}`;
const FIN1 = 'slack:T1:UFIN1';
const REQUESTER = 'slack:T1:UREQ';

const groups = { finance: [FIN1] };

/** A run that opens one finance gate, then one that just waits an hour (something to cancel). */
const gate = defineWorkflow({
  name: 'gate',
  version: 1,
  description: 'one finance gate',
  input: z.object({}),
  run: async (ctx) => ctx.approval('sign-off', { policy: { groups: ['finance'] }, summary: 'Pay Acme', params: { amount: 5000 } }),
}) as unknown as WorkflowDefinition;
const sleeper = defineWorkflow({
  name: 'sleeper',
  version: 1,
  description: 'waits an hour',
  input: z.object({}),
  run: async (ctx) => {
    await ctx.sleep('nap', '1h');
  },
}) as unknown as WorkflowDefinition;

/** Runs the real CLI with a TOLLGATE_CONFIG file holding `config`. */
async function tollgate(config: object, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'tollgate-authz-')), 'tollgate.json');
  writeFileSync(file, JSON.stringify(config));
  let out = '';
  let err = '';
  const env = {
    ...TEST_AUDIT_ENV,
    DATABASE_URL: files.db.url,
    TOLLGATE_CONFIG: file,
    LOG_LEVEL: 'silent',
    TOLLGATE_DATA_DIR: '/nonexistent-tollgate-cli-test',
  };
  const code = await main(['node', 'tollgate', ...args], { out: (s) => (out += `${s}\n`), err: (s) => (err += s) }, env);
  return { code, out, err };
}

async function events(runId: string, type: string) {
  const { rows } = await files.db.pool.query<{ actor: unknown; payload: Record<string, unknown> }>(
    'SELECT actor, payload FROM tollgate.events WHERE run_id = $1 AND type = $2 ORDER BY id',
    [runId, type],
  );
  return rows;
}

describe('the CLI acts as the OS user', () => {
  it('refuses --as a principal the configuration does not let this OS user act for, and records the OS user when it does', async () => {
    const { runtime } = await files.start([gate], { project: parseProjectConfig({ groups }) });
    const run = await runtime.startRun({ workflow: 'gate', input: {}, requester: parsePrincipal(REQUESTER) });
    await waitForRun(runtime, run.id, 'waiting');
    const approvalId = (await files.db.pool.query<{ id: string }>('SELECT id FROM tollgate.approvals WHERE run_id = $1', [run.id])).rows[0]?.id as string;

    const claimed = await tollgate({ groups }, 'approve', approvalId, '--as', FIN1);
    expect(claimed.code).toBe(1);
    expect(claimed.err).toContain(`You are ${ME} at this shell and may not act as ${FIN1}`);
    expect(claimed.err).toContain(`cliDelegates["${ME}"]`);
    expect((await files.db.pool.query('SELECT * FROM tollgate.approval_decisions WHERE approval_id = $1', [approvalId])).rows).toEqual([]);

    const delegated = await tollgate({ groups, cliDelegates: { [ME]: [FIN1] } }, 'approve', approvalId, '--as', FIN1, '--comment', 'from my shell');
    expect(delegated).toMatchObject({ code: 0 });
    const decision = await files.db.pool.query('SELECT principal, via, os_user FROM tollgate.approval_decisions WHERE approval_id = $1', [approvalId]);
    expect(decision.rows).toEqual([{ principal: FIN1, via: 'cli', os_user: ME }]);
    expect((await events(run.id, 'approval.decided'))[0]?.payload).toMatchObject({ via: 'cli', osUser: ME });
    const shown = await tollgate({ groups }, 'runs', 'show', run.id);
    expect(shown.out).toContain(`"from my shell" (via cli by ${ME})`);
  });

  it("refuses to cancel or retry someone else's run, with or without --as, and lets an operator do it on record", async () => {
    const { runtime } = await files.start([sleeper]);
    const run = await runtime.startRun({ workflow: 'sleeper', input: {}, requester: parsePrincipal(REQUESTER) });
    await waitForRun(runtime, run.id, 'waiting');

    const mine = await tollgate({}, 'runs', 'cancel', run.id);
    expect(mine.code).toBe(1);
    expect(mine.err).toContain(`Only the person who started run ${run.id} or an operator can cancel it; ${ME} is neither, so nothing was changed.`);
    const nobody = await tollgate({}, 'runs', 'cancel', run.id, '--as', 'slack:T9:UNOBODY');
    expect(nobody.code).toBe(1);
    expect(nobody.err).toContain('may not act as slack:T9:UNOBODY');
    const retry = await tollgate({}, 'runs', 'retry', run.id);
    expect(retry.code).toBe(1);
    expect(retry.err).toContain(`Only the person who started run ${run.id} or an operator can retry it`);
    expect((await runtime.getRun(run.id)).run).toMatchObject({ status: 'waiting', cancel_requested_at: null });
    expect(await events(run.id, 'run.cancel_requested')).toEqual([]);

    const operator = await tollgate({ operators: [ME] }, 'runs', 'cancel', run.id);
    expect(operator.code).toBe(0);
    await waitForRun(runtime, run.id, 'cancelled');
    const [requested] = await events(run.id, 'run.cancel_requested');
    expect(requested?.actor).toMatchObject(parsePrincipal(ME));
    expect(requested?.payload).toMatchObject({ via: 'cli', osUser: ME });
  });
});

describe("chat: a run's status is scoped like its approvals", () => {
  it("answers another tenant as if the run did not exist, and shows it to the requester's tenant and operators", async () => {
    const project = parseProjectConfig({ operators: ['memory:W9:OPS'] });
    const { runtime, registry } = await files.start([sleeper], { project, worker: false });
    const chat = createChat({ pool: files.db.pool, runtime, registry, log: testLogger(), platforms: [memoryPlatform()] });
    const run = await runtime.startRun({ workflow: 'sleeper', input: {}, requester: parsePrincipal('memory:W1:REQ') });
    const status = async (actor: string) =>
      (await chat.core.submit({ kind: 'command', command: parseCommand(`status ${run.id}`), actor: parsePrincipal(actor), where: null, replyVia: 'return' }))
        .reply;

    expect(await status('memory:W9:STRANGER')).toEqual({ kind: 'notice', text: `No run with id \`${run.id}\`. \`runs\` lists yours.` });
    expect(await status('slack:W1:REQ')).toMatchObject({ kind: 'notice' });
    expect(await status('memory:W1:COLLEAGUE')).toMatchObject({ kind: 'run-status', run: { runId: run.id } });
    expect(await status('memory:W9:OPS')).toMatchObject({ kind: 'run-status', run: { runId: run.id } });
  });
});
