/**
 * Delegation (issue 21, item 5) on the runtime and a real PostgreSQL: who an approval lists when
 * it opens, whose place a delegate's decision takes, the ban on approving one's own request
 * through a chain of delegations, and the refusals of a delegation that cannot be.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { getApproval, listRunApprovals } from '../src/approvals/index.ts';
import type { ApprovalOptions, ApprovalRecord } from '../src/approvals/types.ts';
import { createDelegation, listDelegations, revokeMyDelegations, MAX_DELEGATION_DAYS } from '../src/approvals/delegation.ts';
import { parsePrincipal } from '../src/common/principals.ts';
import { parseCommand, parseUntil } from '../src/intents/command.ts';
import { verifyAuditChain } from '../src/audit/verify.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';
import { poll } from './helpers/poll.ts';

const ALICE = 'slack:T1:UALICE';
const BOB = 'slack:T1:UBOB';
const CAROL = 'slack:T1:UCAROL';
const DAN = 'slack:T1:UDAN'; // not in finance
const EVE = 'slack:T1:UEVE'; // not in finance
const REQUESTER = 'slack:T1:UREQ';

const project = parseProjectConfig({ groups: { finance: [ALICE, BOB, CAROL] } });

/** A workflow that opens one gate with the options given as input and returns its decision. */
const gate = defineWorkflow({
  name: 'gate',
  version: 1,
  description: 'one approval gate',
  input: z.object({ options: z.any() }),
  run: async (ctx) => ctx.approval('sign-off', ctx.input.options as ApprovalOptions),
}) as unknown as WorkflowDefinition;

let db: TestDb;
let t: TestRuntime;

beforeAll(async () => {
  db = await createTestDb();
  t = await createTestRuntime(db, [gate], { project });
});
afterEach(async () => {
  // Each test sets up its own delegations.
  await db.pool.query('UPDATE tollgate.delegations SET revoked_at = now() WHERE revoked_at IS NULL');
});
afterAll(async () => {
  await t?.stop();
  await db?.close();
});

/** `days` from now, as the grammar reads a date (YYYY-MM-DD: to the end of that day, UTC). */
const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);
const until = (days: number) => parseUntil(inDays(days));

async function delegate(from: string, to: string, days = 10) {
  return createDelegation(db.pool, { delegator: parsePrincipal(from), delegate: to, endsAt: until(days), via: 'test' });
}

async function open(policy: ApprovalOptions['policy'], requester = REQUESTER): Promise<ApprovalRecord> {
  const run = await t.runtime.startRun({
    workflow: 'gate',
    input: { options: { policy, summary: 'Pay the invoice', params: { amount: 5000 } } },
    requester: parsePrincipal(requester),
  });
  return poll(async () => (await listRunApprovals(db.pool, run.id)).find((a) => a.status === 'pending'), { message: 'the pending approval' });
}

describe('delegation', () => {
  it("a delegate's decision resolves the gate on behalf of the delegator: recorded with the decision, in its audit event and in the approval's view", async () => {
    const d = await delegate(ALICE, DAN);
    expect(d).toMatchObject({ delegator: ALICE, delegate: DAN, via: 'test' });
    const a = await open({ groups: ['finance'] });
    // The approval lists the delegate beside the approvers; Alice keeps the right.
    expect(a.eligible).toEqual([ALICE, BOB, CAROL, DAN]);
    expect(a.delegations).toEqual([{ delegate: DAN, onBehalfOf: ALICE, chain: [ALICE, DAN] }]);
    expect(a.approvers).toContain(`delegates: ${DAN} for ${ALICE}`);

    const outcome = await t.runtime.decide(a.id, parsePrincipal(DAN), 'approve', 'while Alice is away');
    expect(outcome).toMatchObject({ kind: 'recorded', resolved: 'approved' });
    expect(outcome.message).toContain(`on behalf of ${ALICE}`);
    await waitForRun(t.runtime, a.runId, 'succeeded');

    const { rows } = await db.pool.query('SELECT principal, on_behalf_of FROM tollgate.approval_decisions WHERE approval_id = $1', [a.id]);
    expect(rows).toEqual([{ principal: DAN, on_behalf_of: ALICE }]);
    const ev = await db.pool.query<{ actor: { user: string }; payload: Record<string, unknown> }>(
      `SELECT actor, payload FROM tollgate.events WHERE run_id = $1 AND type = 'approval.decided'`,
      [a.runId],
    );
    expect(ev.rows).toHaveLength(1);
    expect(ev.rows[0]?.actor.user).toBe('UDAN');
    expect(ev.rows[0]?.payload).toMatchObject({ decision: 'approve', onBehalfOf: ALICE });
    const view = await getApproval(db.pool, a.id);
    expect(view?.decisions).toEqual([expect.objectContaining({ principal: DAN, onBehalfOf: ALICE })]);
    // Creating the delegation is in the audit chain too, and the chain verifies.
    const created = await db.pool.query(
      `SELECT payload FROM tollgate.events WHERE run_id IS NULL AND type = 'delegation.created' AND payload->>'delegationId' = $1`,
      [d.id],
    );
    expect(created.rows[0]?.payload).toMatchObject({ delegator: ALICE, delegate: DAN });
    expect((await verifyAuditChain(db.pool)).ok).toBe(true);
    // Whose place the decision took is checked against its chained event, like who made it.
    await db.pool.query('UPDATE tollgate.approval_decisions SET on_behalf_of = $2 WHERE approval_id = $1', [a.id, BOB]);
    const tampered = await verifyAuditChain(db.pool);
    expect(tampered.ok).toBe(false);
    expect(JSON.stringify(tampered.problems)).toContain(`on_behalf_of (the event says ${ALICE})`);
    await db.pool.query('UPDATE tollgate.approval_decisions SET on_behalf_of = $2 WHERE approval_id = $1', [a.id, ALICE]);
    expect((await verifyAuditChain(db.pool)).ok).toBe(true);
  });

  it("one decision fills one approver's place: the delegator after their delegate is told it was recorded, and a quorum of 2 needs a second person", async () => {
    await delegate(ALICE, DAN);
    const a = await open({ groups: ['finance'], quorum: 2 });
    expect(await t.runtime.decide(a.id, parsePrincipal(DAN), 'approve')).toMatchObject({ kind: 'recorded', message: expect.stringContaining('1 of the 2') });
    const again = await t.runtime.decide(a.id, parsePrincipal(ALICE), 'approve');
    expect(again.kind).toBe('already_recorded');
    expect(again.message).toContain(`by your delegate ${DAN}`);
    expect((await getApproval(db.pool, a.id))?.approvals).toBe(1);
    expect(await t.runtime.decide(a.id, parsePrincipal(BOB), 'approve')).toMatchObject({ kind: 'recorded', resolved: 'approved' });
  });

  it('a delegate who is the requester is refused, and so is one whose chain of delegations passes through the requester; nothing is recorded', async () => {
    // Alice → requester: the requester would approve their own request.
    await delegate(ALICE, REQUESTER);
    // Bob → requester → Eve: Eve stands in for Bob through the requester.
    await delegate(BOB, REQUESTER);
    await delegate(REQUESTER, EVE);
    const a = await open({ groups: ['finance'] });
    expect(a.delegations).toEqual(
      expect.arrayContaining([
        { delegate: REQUESTER, onBehalfOf: ALICE, chain: [ALICE, REQUESTER] },
        { delegate: EVE, onBehalfOf: ALICE, chain: [ALICE, REQUESTER, EVE] },
        { delegate: EVE, onBehalfOf: BOB, chain: [BOB, REQUESTER, EVE] },
      ]),
    );
    const own = await t.runtime.decide(a.id, parsePrincipal(REQUESTER), 'approve');
    expect(own.kind).toBe('not_allowed');
    expect(own.message).toContain('TG_DELEGATION_OWN_REQUEST');
    expect(own.message).toContain(`${REQUESTER} requested this run`);
    const via = await t.runtime.decide(a.id, parsePrincipal(EVE), 'approve');
    expect(via.kind).toBe('not_allowed');
    expect(via.message).toContain(`through the delegations ${ALICE} → ${REQUESTER} → ${EVE}, which pass through the requester ${REQUESTER}`);
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM tollgate.approval_decisions WHERE approval_id = $1', [a.id]);
    expect(rows[0]).toEqual({ n: 0 });
    // The requester may still reject as a delegate, as an approver may reject their own request.
    expect(await t.runtime.decide(a.id, parsePrincipal(REQUESTER), 'reject', 'not needed after all')).toMatchObject({ kind: 'recorded', resolved: 'rejected' });
  });

  it('follows a chain A → B → C to its end and stops at a cycle', async () => {
    await delegate(ALICE, DAN);
    await delegate(DAN, EVE);
    await delegate(EVE, DAN); // a cycle back
    await delegate(EVE, ALICE); // and back to the start
    const a = await open({ approvers: [ALICE] });
    expect(a.delegations).toEqual([
      { delegate: DAN, onBehalfOf: ALICE, chain: [ALICE, DAN] },
      { delegate: EVE, onBehalfOf: ALICE, chain: [ALICE, DAN, EVE] },
    ]);
    expect(await t.runtime.decide(a.id, parsePrincipal(EVE), 'approve')).toMatchObject({ kind: 'recorded', resolved: 'approved' });
    const { rows } = await db.pool.query('SELECT on_behalf_of FROM tollgate.approval_decisions WHERE approval_id = $1', [a.id]);
    expect(rows).toEqual([{ on_behalf_of: ALICE }]);
  });

  it('approvals that open after the delegation is revoked do not list the delegate; those already open keep them', async () => {
    await delegate(ALICE, DAN);
    const before = await open({ approvers: [ALICE] });
    expect((await revokeMyDelegations(db.pool, parsePrincipal(ALICE))).map((d) => d.delegate)).toEqual([DAN]);
    const after = await open({ approvers: [ALICE] });
    expect(after.eligible).toEqual([ALICE]);
    const refused = await t.runtime.decide(after.id, parsePrincipal(DAN), 'approve');
    expect(refused).toMatchObject({ kind: 'not_allowed' });
    expect((await getApproval(db.pool, before.id))?.eligible).toEqual([ALICE, DAN]);
    const revoked = await db.pool.query(`SELECT count(*)::int AS n FROM tollgate.events WHERE type = 'delegation.revoked' AND payload->>'delegator' = $1`, [
      ALICE,
    ]);
    expect(revoked.rows[0]?.n).toBeGreaterThan(0);
  });

  it('refuses a delegation to oneself, to something that is not a principal, ending in the past or more than 90 days away, and an unreadable date', async () => {
    const refusal = (p: Promise<unknown>) =>
      p.then(
        () => 'recorded',
        (e: Error & { code?: string }) => `${e.code}: ${e.message}`,
      );
    expect(await refusal(delegate(ALICE, ALICE))).toMatch(/^TG_DELEGATION_INVALID: You cannot delegate to yourself \(slack:T1:UALICE\)/);
    expect(await refusal(delegate(ALICE, 'bob'))).toMatch(/^TG_DELEGATION_INVALID: "bob" is not someone Tollgate can delegate to/);
    expect(await refusal(delegate(ALICE, DAN, -2))).toMatch(/^TG_DELEGATION_INVALID: The delegation would end at the end of .* which has already passed/);
    expect(await refusal(delegate(ALICE, DAN, MAX_DELEGATION_DAYS + 5))).toMatch(/^TG_DELEGATION_INVALID: A delegation lasts at most 90 days/);
    expect(() => parseUntil('2026-13-40')).toThrow(/"2026-13-40" is not a date: write the last day of the delegation as YYYY-MM-DD, e.g. until 2026-12-24/);
    expect(() => parseCommand('delegate slack:T1:UDAN until tomorrow')).toThrow(/"tomorrow" is not a date/);
    expect(() => parseCommand('delegate slack:T1:UDAN 2026-12-24')).toThrow(/Write `delegate @someone until YYYY-MM-DD`/);
    expect(() => parseCommand('delegate dan until 2026-12-24')).toThrow(/"dan" is not someone Tollgate can delegate to/);
    expect(parseCommand('delegate slack:T1:UDAN until 2026-12-24')).toEqual({
      kind: 'delegate',
      action: 'to',
      to: DAN,
      until: '2026-12-24',
      endsAt: '2026-12-25T00:00:00.000Z',
    });
    expect(parseCommand('delegate off')).toEqual({ kind: 'delegate', action: 'off' });
    expect(await listDelegations(db.pool, parsePrincipal(ALICE))).toEqual([]);
  });
});
