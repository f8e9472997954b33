/**
 * The chaos suite, short: one round of every disruption (a worker SIGKILLed and replaced,
 * PostgreSQL SIGKILLed and started again, the Slack Web API answering 429 then 500) under a
 * steady load of purchase orders started and approved through Slack, against real `tollgate
 * server` and `tollgate worker` processes on a PostgreSQL of the suite's own. It fails when any
 * invariant broke; `npm run chaos` runs the same rounds ten times (test/fixtures/chaos/).
 *
 * Below it, the checks themselves on a database of this file: each one fails on the breakage it
 * names, so a green chaos round means something.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { purchaseOrderWorkflow } from '../src/workflows/purchase-order.ts';
import { checkAcked, checkAudit, checkEffects, checkLedger, checkSettled, runStates } from './fixtures/chaos/invariants.ts';
import type { SentCommand } from './fixtures/chaos/load.ts';
import { runCli } from './fixtures/chaos/processes.ts';
import { DISRUPTIONS, runChaos } from './fixtures/chaos/rounds.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { startHttpTarget, type HttpTarget } from './helpers/http-target.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';

describe('chaos', () => {
  it('keeps every invariant through a round of worker kills, a PostgreSQL restart and Slack 429/500s', async () => {
    const report = await runChaos({ rounds: 1, disruptions: DISRUPTIONS, commandIntervalMs: 700, stepMs: 1500, settleMs: 60_000 });
    const broken = report.rounds.flatMap((r) => [
      ...r.checks.filter((c) => !c.ok).map((c) => `round ${r.round} ${c.name}: ${c.detail}`),
      ...(r.error ? [`round ${r.round}: ${r.error}`] : []),
    ]);
    expect(broken).toEqual([]);
    expect(report.survived).toBe(1);
    // The load really ran: orders were started, approved through Slack and written.
    expect(report.rounds[0]?.runs).toBeGreaterThan(0);
  }, 300_000);
});

describe('the chaos checks', () => {
  let db: TestDb;
  let vendor: HttpTarget;
  let t: TestRuntime;
  beforeAll(async () => {
    db = await createTestDb();
    vendor = await startHttpTarget();
    const project = parseProjectConfig({ workflows: { 'purchase-order': { notifyUrl: `${vendor.url}/orders` } } });
    t = await createTestRuntime(db, [purchaseOrderWorkflow(project)], { project });
  });
  afterAll(async () => {
    await t?.stop();
    await vendor?.close();
    await db?.close();
  });

  it('fail on a stuck run, a lost or doubled command, a second order, a second key and an edited event', async () => {
    const order = (reason: string) => ({ vendor: 'Acme', amount: 100, currency: 'EUR', reason });
    const done = [];
    for (const reason of ['a', 'b'])
      done.push(await waitForRun(t.runtime, (await t.runtime.startRun({ workflow: 'purchase-order', input: order(reason) })).id, 'succeeded'));
    const cmd = (tag: string): SentCommand => ({ tag, triggerId: tag, text: '', acked: true, attempts: 1, sending: false });

    // What a sound history looks like to them.
    let runs = await runStates(db.pool);
    expect(checkSettled(runs, 0).ok).toBe(true);
    expect(checkAcked(runs, [cmd('a'), cmd('b')]).ok).toBe(true);
    expect(await checkLedger(db.pool)).toMatchObject({ ok: true });
    expect(await checkEffects(db.pool, vendor.requests)).toMatchObject({ ok: true });

    // A run that never got going (no worker took it).
    await t.worker?.stop();
    await t.runtime.startRun({ workflow: 'purchase-order', input: order('c') });
    runs = await runStates(db.pool);
    expect(checkSettled(runs, 1000)).toMatchObject({ ok: false, detail: expect.stringContaining('1 runs neither terminal nor at an approval gate') });

    // An acknowledged command without its run; a command with two.
    expect(checkAcked(runs, [cmd('a'), cmd('lost')])).toMatchObject({
      ok: false,
      detail: expect.stringContaining('command lost was acknowledged but has no run'),
    });
    await t.runtime.startRun({ workflow: 'purchase-order', input: order('a') });
    expect(checkAcked(await runStates(db.pool), [cmd('a')])).toMatchObject({ ok: false, detail: expect.stringContaining('command a has 2 runs') });

    // The notification of run a, delivered again under a key of its own.
    const first = vendor.requests[0];
    if (!first) throw new Error('run a never notified the vendor');
    const again = { ...first, headers: { ...first.headers, 'idempotency-key': `${done[0]?.id}:9` } };
    expect(await checkEffects(db.pool, [...vendor.requests, again])).toMatchObject({ ok: false, detail: expect.stringContaining('under 2 keys') });

    // A second order written for run b, under another key.
    await db.pool.query(
      `INSERT INTO tollgate.purchase_orders (id, idempotency_key, run_id, vendor, amount, currency, reason) VALUES ('po_again', $1, $2, 'Acme', 100, 'EUR', 'b')`,
      [`${done[1]?.id}:7`, done[1]?.id],
    );
    expect(await checkLedger(db.pool)).toMatchObject({ ok: false, detail: expect.stringContaining(`run ${done[1]?.id} has 2 orders`) });

    // An event edited behind the append-only trigger, as a superuser could.
    const c = await db.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('ALTER TABLE tollgate.events DISABLE TRIGGER events_append_only');
      await c.query(`UPDATE tollgate.events SET payload = '{"forged":true}' WHERE id = (SELECT min(id) FROM tollgate.events WHERE run_id = $1)`, [done[0]?.id]);
      await c.query('ALTER TABLE tollgate.events ENABLE TRIGGER events_append_only');
      await c.query('COMMIT');
    } finally {
      c.release();
    }
    const audit = checkAudit(await runCli(['audit', 'verify', '--json'], { DATABASE_URL: db.url, LOG_LEVEL: '' }));
    expect(audit).toMatchObject({ ok: false, detail: expect.stringContaining(String(done[0]?.id)) });
  }, 120_000);
});
