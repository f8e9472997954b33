/**
 * `tollgate runs retry <id>` through the real CLI entry point, against the test database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';
import { builtinWorkflows } from '../src/workflows/index.ts';
import os from 'node:os';
import { inProcessCli } from './helpers/cli.ts';

/** Runs started by this shell's OS user, who may therefore retry them. */
const ME = { platform: 'cli', tenant: os.hostname(), user: os.userInfo().username };

let db: TestDb;
let t: TestRuntime;

beforeAll(async () => {
  db = await createTestDb();
  t = await createTestRuntime(db, builtinWorkflows());
});
afterAll(async () => {
  await t?.stop();
  await db?.close();
});

/** The CLI in-process against this file's database. */
const cli = inProcessCli(() => db);

describe('tollgate runs retry', () => {
  it('refuses a run that has not failed, with a clear message and a non-zero exit', async () => {
    const run = await t.runtime.startRun({ workflow: 'demo', input: { name: 'Ada', sleepMs: 0 }, requester: ME });
    await waitForRun(t.runtime, run.id, 'succeeded');
    const res = await cli('runs', 'retry', run.id);
    expect(res.code).not.toBe(0);
    expect(res.err).toContain(`Run ${run.id} is succeeded; only failed runs can be retried.`);
    expect(res.out).toBe('');
    expect((await t.runtime.getRun(run.id)).run.status).toBe('succeeded'); // untouched
  });

  it('refuses an unknown run id, naming it', async () => {
    const res = await cli('runs', 'retry', 'run_nope');
    expect(res.code).not.toBe(0);
    expect(res.err).toContain('No run with id "run_nope"');
  });

  it('resumes a failed run at its failed step', async () => {
    const run = await t.runtime.startRun({ workflow: 'demo', input: { name: 'Ada', sleepMs: 0, failAt: 'transform' }, requester: ME });
    await waitForRun(t.runtime, run.id, 'failed');
    const res = await cli('runs', 'retry', run.id);
    expect(res).toMatchObject({ code: 0, err: '' });
    expect(res.out).toContain(`${run.id} queued again; it resumes at the step that failed.`);
  });

  it("Edit and retry as the README's first run shows it: `--set failAt=` removes the failure and the run succeeds", async () => {
    const run = await t.runtime.startRun({ workflow: 'demo', input: { name: 'Ada', sleepMs: 0, failAt: 'transform' }, requester: ME });
    await waitForRun(t.runtime, run.id, 'failed');
    const res = await cli('runs', 'retry', run.id, '--set', 'failAt=');
    expect(res, res.err).toMatchObject({ code: 0, err: '' });
    await waitForRun(t.runtime, run.id, 'succeeded');
    expect((await t.runtime.getRun(run.id)).run.input).not.toHaveProperty('failAt');
  });
});
