/**
 * `tollgate delegate`, `delegate list`, `delegate revoke` and `approvals show` through the real CLI
 * entry point, against the test database.
 */
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { listRunApprovals } from '../src/approvals/index.ts';
import type { ApprovalOptions } from '../src/approvals/types.ts';
import { parsePrincipal } from '../src/common/principals.ts';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { inProcessCli } from './helpers/cli.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { poll } from './helpers/poll.ts';
import { createTestRuntime, type TestRuntime } from './helpers/runtime.ts';

/** This shell's OS user: who the CLI acts as. */
const ME = `cli:${os.hostname()}:${os.userInfo().username}`;
const DEL = 'slack:T1:UDELEGATE';

const gate = defineWorkflow({
  name: 'gate',
  version: 1,
  description: 'one approval gate',
  input: z.object({ options: z.any() }),
  run: async (ctx) => ctx.approval('sign-off', ctx.input.options as ApprovalOptions),
}) as unknown as WorkflowDefinition;

let db: TestDb;
let t: TestRuntime;
const cli = inProcessCli(() => db);
const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);

beforeAll(async () => {
  db = await createTestDb();
  t = await createTestRuntime(db, [gate]);
});
afterAll(async () => {
  await t?.stop();
  await db?.close();
});

describe('tollgate delegate', () => {
  it('records a delegation from this OS user, lists it, and a delegate decision shows "on behalf of" in `approvals show`', async () => {
    const day = inDays(14);
    const res = await cli('delegate', DEL, '--until', day);
    expect(res).toMatchObject({ code: 0, err: '' });
    expect(res.out).toMatch(
      new RegExp(`^Delegated: ${DEL} decides for ${ME.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} until the end of ${day} \\(UTC\\) \\(dlg_`),
    );
    const { rows } = await db.pool.query('SELECT delegator, delegate, via, os_user, created_by FROM tollgate.delegations');
    expect(rows).toEqual([{ delegator: ME, delegate: DEL, via: 'cli', os_user: ME, created_by: ME }]);

    const list = await cli('delegate', 'list');
    expect(list.code).toBe(0);
    expect(list.out).toContain('DELEGATION');
    expect(list.out).toContain(DEL);
    expect(list.out).toContain(`the end of ${day} (UTC)`);
    const json = JSON.parse((await cli('delegate', 'list', '--for', DEL, '--json')).out) as { delegator: string }[];
    expect(json.map((d) => d.delegator)).toEqual([ME]);

    // An approval of this OS user opens: the delegate is listed, and decides in its place.
    const run = await t.runtime.startRun({
      workflow: 'gate',
      input: { options: { policy: { approvers: [ME] }, summary: 'Sign the lease', params: { months: 12 } } },
      requester: parsePrincipal('slack:T1:UREQ'),
    });
    const a = await poll(async () => (await listRunApprovals(db.pool, run.id)).find((x) => x.status === 'pending'), { message: 'the approval' });
    expect(a.eligible).toEqual([ME, DEL]);
    expect(await t.runtime.decide(a.id, parsePrincipal(DEL), 'approve')).toMatchObject({ kind: 'recorded', resolved: 'approved' });
    const shown = await cli('approvals', 'show', a.id);
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(new RegExp(`${DEL}\\s+approve on behalf of ${ME.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    expect(shown.out).toContain(`delegates: ${DEL} for ${ME}`);
  });

  it('refuses an unreadable or past date, yourself and a malformed principal, with the reason and exit 1; records nothing', async () => {
    const before = (await db.pool.query('SELECT count(*)::int AS n FROM tollgate.delegations')).rows[0];
    const cases: [string[], RegExp][] = [
      [[DEL, '--until', '2026-13-40'], /"2026-13-40" is not a date: write the last day of the delegation as YYYY-MM-DD, e.g. until 2026-12-24/],
      [[DEL, '--until', '2020-01-01'], /The delegation would end at the end of 2020-01-01 \(UTC\), which has already passed/],
      [[DEL, '--until', inDays(91)], /A delegation lasts at most 90 days/],
      [[ME, '--until', inDays(3)], /You cannot delegate to yourself/],
      [['bob', '--until', inDays(3)], /"bob" is not someone Tollgate can delegate to/],
      [[DEL], /Say to whom and until when/],
    ];
    for (const [args, message] of cases) {
      const res = await cli('delegate', ...args);
      expect(res.code, args.join(' ')).toBe(1);
      expect(res.err).toMatch(message);
      expect(res.out).toBe('');
    }
    expect((await db.pool.query('SELECT count(*)::int AS n FROM tollgate.delegations')).rows[0]).toEqual(before);
  });

  it('revokes a delegation by id, once; --as a principal cliDelegates does not list is refused', async () => {
    const made = JSON.parse((await cli('delegate', 'slack:T1:UOTHER', '--until', inDays(2), '--json')).out) as { id: string };
    const res = await cli('delegate', 'revoke', made.id);
    expect(res).toMatchObject({ code: 0, err: '' });
    expect(res.out).toContain(`Revoked: slack:T1:UOTHER decides for ${ME}`);
    const again = await cli('delegate', 'revoke', made.id);
    expect(again.code).toBe(1);
    expect(again.err).toContain(`${made.id} has already been revoked; nothing changed.`);
    const events = await db.pool.query(`SELECT payload FROM tollgate.events WHERE type = 'delegation.revoked' AND payload->>'delegationId' = $1`, [made.id]);
    expect(events.rows).toEqual([{ payload: expect.objectContaining({ revokedBy: ME }) }]);
    const as = await cli('delegate', DEL, '--until', inDays(2), '--as', 'slack:T1:UFIN');
    expect(as.code).toBe(1);
    expect(as.err).toContain('may not act as slack:T1:UFIN');
  });
});
