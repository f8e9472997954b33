import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { verifyAuditChain } from '../src/audit/verify.ts';
import { purgeBefore } from '../src/audit/retention.ts';
import { main } from '../src/cli/main.ts';
import { NonRetriableError } from '../src/common/errors.ts';
import { createTestDb, TEST_AUDIT_ENV } from './helpers/db.ts';
import { createTestRuntime, useTestRuntimes, waitForRun } from './helpers/runtime.ts';
import { poll } from './helpers/poll.ts';

const files = useTestRuntimes();

const steps = defineWorkflow({
  name: 'steps',
  version: 1,
  description: 'a few steps',
  input: z.object({ n: z.number().default(1) }),
  run: async (ctx) => {
    const a = await ctx.step('a', () => ({ n: ctx.input.n, secret: 'customer data' }));
    const b = await ctx.step('b', () => a.n * 2);
    return { b };
  },
}) as unknown as WorkflowDefinition;

const failing = defineWorkflow({
  name: 'failing',
  version: 1,
  description: 'fails for good',
  input: z.object({}),
  run: async (ctx) => {
    await ctx.step('ok', () => 1);
    await ctx.step('boom', () => {
      throw new NonRetriableError('boom');
    });
  },
}) as unknown as WorkflowDefinition;

async function cli(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-audit-'));
  const cfg = path.join(dir, 'tollgate.json');
  writeFileSync(cfg, JSON.stringify({ groups: {} }));
  const code = await main(
    ['node', 'tollgate', ...args],
    { out: (s) => out.push(s), err: (s) => err.push(s) },
    {
      DATABASE_URL: files.db.url,
      ...TEST_AUDIT_ENV,
      TOLLGATE_CONFIG: cfg,
      LOG_LEVEL: 'silent',
    },
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Runs `sql` with the append-only trigger off, as a superuser would to tamper with the log. */
async function tamper(sql: string, params: unknown[] = []) {
  const c = await files.db.pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('ALTER TABLE tollgate.events DISABLE TRIGGER events_append_only');
    await c.query(sql, params);
    await c.query('ALTER TABLE tollgate.events ENABLE TRIGGER events_append_only');
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK');
    throw e;
  } finally {
    c.release();
  }
}

describe('audit trail', () => {
  it('refuses UPDATE, DELETE and TRUNCATE of events, and audit verify names the first edited event', async () => {
    const { runtime } = await files.start([steps]);
    const runs = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => runtime.startRun({ workflow: 'steps', input: { n } })));
    for (const r of runs) await waitForRun(runtime, r.id, 'succeeded');
    const ok = await verifyAuditChain(files.db.pool);
    expect(ok).toMatchObject({ ok: true });
    expect(ok.chains).toBeGreaterThanOrEqual(6);

    const target = runs[2]?.id as string;
    const { rows } = await files.db.pool.query<{ id: string; payload: unknown; type: string }>(
      `SELECT id::text, payload, type FROM tollgate.events WHERE run_id = $1 AND type = 'step.succeeded' ORDER BY seq LIMIT 1`,
      [target],
    );
    const ev = rows[0] as { id: string; payload: unknown; type: string };
    await expect(files.db.pool.query(`UPDATE tollgate.events SET payload = '{"forged":true}' WHERE id = $1`, [ev.id])).rejects.toThrow(
      /append-only: UPDATE refused on event/,
    );
    await expect(files.db.pool.query('DELETE FROM tollgate.events WHERE id = $1', [ev.id])).rejects.toThrow(/append-only: DELETE refused/);
    await expect(files.db.pool.query('TRUNCATE tollgate.events CASCADE')).rejects.toThrow(/append-only: TRUNCATE refused/);

    // A superuser edits the payload behind the trigger's back.
    await tamper(`UPDATE tollgate.events SET payload = jsonb_set(payload, '{attempts}', '7') WHERE id = $1`, [ev.id]);
    const edited = await verifyAuditChain(files.db.pool);
    expect(edited.ok).toBe(false);
    expect(edited.broken).toMatchObject({ eventId: ev.id, runId: target });
    expect(edited.broken?.reason).toContain('payload was edited');
    const shown = await cli(['audit', 'verify']);
    expect(shown.code).toBe(1);
    expect(shown.err).toContain(`Audit chain BROKEN at event ${ev.id} (run ${target}`);

    // Put it back: the chain verifies again. Then edit a field the hash covers directly.
    await tamper('UPDATE tollgate.events SET payload = $2 WHERE id = $1', [ev.id, JSON.stringify(ev.payload)]);
    expect(await verifyAuditChain(files.db.pool)).toMatchObject({ ok: true });
    await tamper(`UPDATE tollgate.events SET type = 'step.failed' WHERE id = $1`, [ev.id]);
    expect((await verifyAuditChain(files.db.pool)).broken).toMatchObject({ eventId: ev.id, reason: expect.stringContaining('its hash no longer matches') });
    await tamper('UPDATE tollgate.events SET type = $2 WHERE id = $1', [ev.id, ev.type]);

    // Removing an event from the middle of a chain is caught at the next one.
    const other = runs[4]?.id as string;
    const chain = await files.db.pool.query<{ id: string }>('SELECT id::text FROM tollgate.events WHERE run_id = $1 ORDER BY seq', [other]);
    await tamper('DELETE FROM tollgate.events WHERE id = $1', [chain.rows[1]?.id]);
    const removed = await verifyAuditChain(files.db.pool);
    expect(removed.broken).toMatchObject({ eventId: chain.rows[2]?.id, runId: other, reason: expect.stringContaining('missing') });
  });

  it('catches the newest events of a chain being removed', async () => {
    const fresh = await createTestDb();
    // One worker knowing every workflow of this database: a second worker without 'failing'
    // would take its job, fail it as unknown and leave it to Graphile's backoff.
    const r = await createTestRuntime(fresh, [steps, failing]);
    try {
      const run = await r.runtime.startRun({ workflow: 'steps', input: {} });
      await waitForRun(r.runtime, run.id, 'succeeded');
      await r.stop();
      const c = await fresh.pool.connect();
      await c.query('ALTER TABLE tollgate.events DISABLE TRIGGER events_append_only');
      await c.query(`DELETE FROM tollgate.events WHERE id = (SELECT max(id) FROM tollgate.events WHERE run_id = $1)`, [run.id]);
      c.release();
      const report = await verifyAuditChain(fresh.pool);
      expect(report.ok).toBe(false);
      expect(report.broken).toMatchObject({ runId: run.id, reason: expect.stringContaining('newest event(s) are missing') });
    } finally {
      await fresh.close();
    }
  });
});

describe('audit verify on a live system', () => {
  it('reports a sound log as sound while runs keep appending events', async () => {
    const busy = defineWorkflow({
      name: 'busy',
      version: 1,
      description: 'many quick steps',
      input: z.object({}),
      run: async (ctx) => {
        for (let i = 0; i < 40; i++) await ctx.step(`s${i}`, () => i);
      },
    }) as unknown as WorkflowDefinition;
    const live = await createTestDb(); // the other tests of this file tamper with theirs
    const r = await createTestRuntime(live, [busy]);
    try {
      const runs = await Promise.all([1, 2, 3, 4].map(() => r.runtime.startRun({ workflow: 'busy', input: {} })));
      const reports = [];
      for (let i = 0; i < 15; i++) reports.push(await verifyAuditChain(live.pool));
      for (const run of runs) await waitForRun(r.runtime, run.id, 'succeeded');
      reports.push(await verifyAuditChain(live.pool));
      expect(reports.filter((rep) => !rep.ok)).toEqual([]);
      expect(reports.at(-1)?.events).toBeGreaterThan(4 * 80);
    } finally {
      await r.stop();
      await live.close();
    }
  });
});

describe('retention', () => {
  it('purges step inputs/outputs and event payloads of finished runs, and the chain still verifies', async () => {
    const fresh = await createTestDb();
    // One worker knowing every workflow of this database: a second worker without 'failing'
    // would take its job, fail it as unknown and leave it to Graphile's backoff.
    const r = await createTestRuntime(fresh, [steps, failing]);
    try {
      const run = await r.runtime.startRun({ workflow: 'steps', input: { n: 21 } });
      await waitForRun(r.runtime, run.id, 'succeeded');
      const before = await verifyAuditChain(fresh.pool);
      expect(before).toMatchObject({ ok: true, purgedPayloads: 0 });

      // Everything up to now is "older than the retention period".
      const result = await purgeBefore(fresh.pool, new Date(Date.now() + 1000));
      expect(result.events).toBe(before.events);
      expect(result.runs).toBe(1);
      const detail = await r.runtime.getRun(run.id);
      expect(detail.steps.every((s) => s.input === null && s.output === null)).toBe(true);
      expect(JSON.stringify(detail)).not.toContain('customer data');
      expect(detail.events.every((e) => e.payload === null)).toBe(true);

      const after = await verifyAuditChain(fresh.pool);
      expect(after).toMatchObject({ ok: true, purgedPayloads: before.events });
      // The purge itself is on the record (global chain).
      const purged = await fresh.pool.query(`SELECT payload FROM tollgate.events WHERE run_id IS NULL AND type = 'retention.completed'`);
      expect(purged.rows[0]?.payload).toMatchObject({ events: before.events, runs: 1 });
      // Retention's exception is only "payload to NULL": anything else is still refused.
      await expect(fresh.pool.query(`UPDATE tollgate.events SET payload = NULL, type = 'x' WHERE run_id = $1`, [run.id])).rejects.toThrow(/append-only/);

      // A failed run whose journal was purged cannot be resumed from it.
      const f = await r.runtime.startRun({ workflow: 'failing', input: {} });
      await waitForRun(r.runtime, f.id, 'failed');
      await purgeBefore(fresh.pool, new Date(Date.now() + 1000));
      await expect(r.runtime.retry(f.id, null)).rejects.toThrow(/retention purged its recorded step outputs/);

      // The scheduled task does the same through the worker (days: 0 = everything so far).
      const run2 = await r.runtime.startRun({ workflow: 'steps', input: { n: 2 } });
      await waitForRun(r.runtime, run2.id, 'succeeded');
      await fresh.pool.query(`SELECT graphile_worker.add_job('retention-purge', '{"days": 0}'::json)`);
      const left = await poll(
        async () => {
          const n = Number(
            (await fresh.pool.query(`SELECT count(*) FROM tollgate.events WHERE run_id = $1 AND payload IS NOT NULL`, [run2.id])).rows[0]?.count,
          );
          return n === 0 ? n : undefined;
        },
        { message: "the scheduled purge to empty the run's payloads", intervalMs: 50, retryErrors: false },
      );
      expect(left).toBe(0);
      expect(await verifyAuditChain(fresh.pool)).toMatchObject({ ok: true });
    } finally {
      await r.stop(); // before closing the pool its worker uses
      await fresh.close();
    }
  });
});
