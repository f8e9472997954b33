/**
 * Model calls in the journal: `recordModelCall` appends a `model.called` event that the audit
 * chain signs like any other, and `listModelCalls` gives a run's calls back in order (what
 * `runs show --json` shows), tokens, cost and latency included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../src/audit/verify.ts';
import { listModelCalls, recordModelCall } from '../src/model/record.ts';
import type { ModelCallRecord } from '../src/model/types.ts';
import { demo } from '../src/workflows/demo.ts';
import { createTestDb, testAuditKey, type TestDb } from './helpers/db.ts';
import { createTestRuntime, type TestRuntime } from './helpers/runtime.ts';

let db: TestDb;
let rt: TestRuntime;
beforeAll(async () => {
  db = await createTestDb();
  rt = await createTestRuntime(db, [demo], { worker: false });
});
afterAll(async () => {
  await rt.stop();
  await db.close();
});

const record = (over: Partial<ModelCallRecord>): ModelCallRecord => ({
  model: 'test-model',
  prompt: { name: 'extract', version: 2 },
  request: [{ role: 'user', content: '{"email":"[[EMAIL_1]]"}' }],
  response: { email: '[[EMAIL_1]]' },
  inputTokens: 120,
  outputTokens: 30,
  costUsd: 0.00048,
  latencyMs: 412,
  dropped: [],
  error: null,
  ...over,
});

describe('model call records', () => {
  it('journals each call as a model.called event, chained, and lists a run’s calls in order', async () => {
    const run = await rt.runtime.startRun({ workflow: 'demo', input: {} });
    const other = await rt.runtime.startRun({ workflow: 'demo', input: {} });
    const first = record({ dropped: ['approved'] });
    const failed = record({
      response: null,
      inputTokens: null,
      outputTokens: null,
      costUsd: null,
      error: { code: 'TG_MODEL_TIMEOUT', message: 'The model did not answer within 30 s.' },
    });
    await recordModelCall(
      db.pool,
      { runId: run.id, stepIdx: 1, actor: { platform: 'slack', tenant: 'T1', user: 'U1' }, context: { step: 'extract', model: 'ignored' } },
      first,
    );
    await recordModelCall(db.pool, { runId: other.id, stepIdx: null, actor: null }, record({ model: 'other' }));
    await recordModelCall(db.pool, { runId: run.id, stepIdx: 1, actor: null }, failed);
    await recordModelCall(
      db.pool,
      { runId: null, stepIdx: null, actor: null, context: { conversation: 'C1' } },
      record({ prompt: { name: 'intent', version: 1 } }),
    );

    const calls = await listModelCalls(db.pool, run.id);
    expect(calls).toHaveLength(2);
    // The record's own fields win over the context's.
    expect(calls[0]).toEqual({ ...first, step: 'extract' });
    expect(calls[1]).toEqual(failed);

    const { rows } = await db.pool.query<{ step_idx: number | null; actor: unknown }>(
      "SELECT step_idx, actor FROM tollgate.events WHERE type = 'model.called' AND run_id = $1 ORDER BY id",
      [run.id],
    );
    expect(rows).toEqual([
      { step_idx: 1, actor: { platform: 'slack', tenant: 'T1', user: 'U1' } },
      { step_idx: 1, actor: null },
    ]);
    const report = await verifyAuditChain(db.pool, testAuditKey);
    expect(report.ok).toBe(true);
  });
});
