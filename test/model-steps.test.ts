/**
 * Model steps (`ctx.model.extract`, `classify`, `generate`) against the fake OpenAI server and a
 * real database: each call recorded (tokens, cost, latency) and shown by `tollgate runs show`,
 * memoized on replay, a run's cost budget that gates a step behind an approval, `neverSend`
 * fields that never leave the machine, and a clear failure without a model.
 */
import os from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createModelClient } from '../src/model/client.ts';
import type { ModelClient, ModelSettings } from '../src/model/types.ts';
import { listRunApprovals } from '../src/approvals/index.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { startFakeOpenAI, type FakeOpenAI } from './fakes/openai/index.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';
import { inProcessCli } from './helpers/cli.ts';

const ALICE = 'slack:T1:UALICE';
const ME = { platform: 'cli', tenant: os.hostname(), user: os.userInfo().username };
const MODEL = 'gpt-test';
/** USD per million tokens: large, so a small call has a visible cost. */
const PRICES = { [MODEL]: { inputPerMillion: 1000, outputPerMillion: 2000 } };

let db: TestDb;
let fake: FakeOpenAI;
const runtimes: TestRuntime[] = [];
const project = parseProjectConfig({ groups: { reviewers: [ALICE] } });

function client(overrides: Partial<ModelSettings> = {}): ModelClient {
  return createModelClient(
    { model: MODEL, baseUrl: fake.url, apiKey: undefined, timeoutMs: 5000, maxRetries: 0, prices: PRICES, redact: [], ...overrides },
    testLogger(),
  );
}

async function rt(workflows: WorkflowDefinition[], model: ModelClient = client()): Promise<TestRuntime> {
  const r = await createTestRuntime(db, workflows, { project, model });
  runtimes.push(r);
  return r;
}

/** The CLI in-process against this file's database. */
const cli = inProcessCli(() => db);

beforeAll(async () => {
  db = await createTestDb();
  fake = await startFakeOpenAI();
});
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.stop()));
  fake.reset();
});
afterAll(async () => {
  await fake?.close();
  await db?.close();
});

const ticket = z.object({ customer: z.string().nullable(), product: z.string(), urgent: z.boolean() });

/** Extracts a ticket, then waits for a person's sign-off: the replay after the decision re-runs the workflow from the top. */
const triage = defineWorkflow({
  name: 'triage',
  version: 1,
  description: 'extract a ticket, then wait for a sign-off',
  input: z.object({ message: z.string() }),
  run: async (ctx) => {
    const t = await ctx.model.extract(ticket, { message: ctx.input.message }, { prompt: { name: 'ticket', version: 3 } });
    const gate = await ctx.approval('sign-off', { policy: { groups: ['reviewers'] }, summary: `Ticket for ${t.product}`, params: t });
    return { ticket: t, approved: gate.approved };
  },
});

describe('model steps', () => {
  it('records tokens, cost and latency of each call, shown by runs show --json and in the timeline', async () => {
    const t = await rt([triage]);
    fake.script({ json: { customer: 'Acme', product: 'router', urgent: true }, usage: { prompt_tokens: 120, completion_tokens: 30 } });
    const run = await t.runtime.startRun({ workflow: 'triage', input: { message: 'Our router is down!' }, requester: ME });
    await waitForRun(t.runtime, run.id, 'waiting');

    const shown = await cli('runs', 'show', run.id, '--json');
    expect(shown.code).toBe(0);
    const calls = (JSON.parse(shown.out) as { modelCalls: Record<string, unknown>[] }).modelCalls;
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    expect(call).toMatchObject({
      model: MODEL,
      prompt: { name: 'ticket', version: 3 },
      inputTokens: 120,
      outputTokens: 30,
      costUsd: (120 * 1000 + 30 * 2000) / 1_000_000,
      dropped: [],
      error: null,
      step: 'model:ticket',
      stepIdx: 0,
      attempt: 1,
    });
    expect(typeof call.latencyMs).toBe('number');
    expect(call.latencyMs as number).toBeGreaterThanOrEqual(0);
    expect(JSON.stringify(call.request)).toContain('Our router is down!');
    expect(call.response).toEqual({ customer: 'Acme', product: 'router', urgent: true });

    const human = await cli('runs', 'show', run.id);
    expect(human.out).toMatch(/model gpt-test ticket v3 .*120 in \/ 30 out tokens .*\$0\.1800/);
  });

  it('is memoized: the replay after an approval returns the recorded answer and never calls the model again', async () => {
    const t = await rt([triage]);
    fake.script({ json: { customer: null, product: 'printer', urgent: false } });
    const run = await t.runtime.startRun({ workflow: 'triage', input: { message: 'The printer jams sometimes.' }, requester: ME });
    await waitForRun(t.runtime, run.id, 'waiting');
    expect(fake.requests).toHaveLength(1);

    const [approval] = await listRunApprovals(db.pool, run.id);
    await t.runtime.decide(approval!.id, ALICE, 'approve');
    const done = await waitForRun(t.runtime, run.id, 'succeeded');
    // Had the step called again, the fake (no reply scripted) would have answered 500 and the run failed.
    expect(fake.requests).toHaveLength(1);
    expect(done.output).toEqual({ ticket: { customer: null, product: 'printer', urgent: false }, approved: true });
    const { steps } = await t.runtime.getRun(run.id);
    expect(steps.find((s) => s.kind === 'model')).toMatchObject({ name: 'model:ticket', status: 'succeeded', attempts: 1 });
  });

  it('classify answers one of the labels; generate answers text', async () => {
    const wf = defineWorkflow({
      name: 'label-and-reply',
      version: 1,
      description: 'classify, then write a reply',
      input: z.object({ message: z.string() }),
      run: async (ctx) => {
        const label = await ctx.model.classify(['bug', 'question', 'praise'], { message: ctx.input.message }, { prompt: { name: 'label', version: 1 } });
        const reply = await ctx.model.generate(
          'Write a one-line answer to the message.',
          { message: ctx.input.message, label },
          { prompt: { name: 'reply', version: 2 }, maxOutputTokens: 50 },
        );
        return { label, reply };
      },
    });
    const t = await rt([wf]);
    fake.script({ json: { label: 'question' } }, { text: 'Yes, it does.' });
    const run = await t.runtime.startRun({ workflow: 'label-and-reply', input: { message: 'Does it work offline?' } });
    const done = await waitForRun(t.runtime, run.id, 'succeeded');
    expect(done.output).toEqual({ label: 'question', reply: 'Yes, it does.' });
    expect(fake.requests[1]!.body!.max_completion_tokens).toBe(50);
    expect(fake.requests[1]!.body!.messages[0]!.content).toBe('Write a one-line answer to the message.');
  });

  it('without a configured model, a model step fails for good at once, saying what to set', async () => {
    const t = await rt([triage], client({ model: undefined, baseUrl: undefined }));
    const run = await t.runtime.startRun({ workflow: 'triage', input: { message: 'hello' } });
    const failed = await waitForRun(t.runtime, run.id, 'failed');
    expect(JSON.stringify(failed.error)).toContain('TG_MODEL_NOT_CONFIGURED');
    expect((failed.error as { message: string }).message).toContain('TOLLGATE_MODEL');
    const { steps } = await t.runtime.getRun(run.id);
    expect(steps.find((s) => s.kind === 'model')).toMatchObject({ status: 'failed', attempts: 1 });
    expect(fake.requests).toHaveLength(0);
  });
});

describe('a model step without a prompt', () => {
  it('fails the run with a sentence saying to name the prompt and its version', async () => {
    const wf = defineWorkflow({
      name: 'no-prompt',
      version: 1,
      description: 'calls the model without saying which prompt',
      input: z.object({}),
      run: async (ctx) => ctx.model.generate('Say hi.', {}, {} as never),
    });
    const t = await rt([wf]);
    const run = await t.runtime.startRun({ workflow: 'no-prompt', input: {} });
    const failed = await waitForRun(t.runtime, run.id, 'failed');
    expect((failed.error as { message: string }).message).toContain(
      'ctx.model.generate was called without a prompt name and version (got null): pass options.prompt = { name:',
    );
    expect(fake.requests).toHaveLength(0);
  });
});

describe('a run’s cost budget', () => {
  const budgeted = (maxCostUsd: number) =>
    defineWorkflow({
      name: `budgeted-${String(maxCostUsd).replace('.', '-')}`,
      version: 1,
      description: 'one text step under a budget',
      input: z.object({ topic: z.string() }),
      budget: { maxCostUsd, approval: { groups: ['reviewers'] } },
      run: async (ctx) => ctx.model.generate('Write a haiku.', { topic: ctx.input.topic }, { prompt: { name: 'haiku', version: 1 }, maxOutputTokens: 100 }),
    });

  it('a step whose estimate would pass the budget waits for an approval showing the estimate; approving lets the call happen', async () => {
    const wf = budgeted(0.0001);
    const t = await rt([wf]);
    fake.script({ text: 'autumn moonlight' });
    const run = await t.runtime.startRun({ workflow: wf.name, input: { topic: 'autumn' }, requester: ME });
    await waitForRun(t.runtime, run.id, 'waiting');
    expect(fake.requests).toHaveLength(0); // nothing was sent before a person agreed

    const [approval] = await listRunApprovals(db.pool, run.id);
    expect(approval).toMatchObject({ status: 'pending', risk: 'medium', name: 'budget:model:haiku' });
    // 100 output tokens at 2000 USD per million alone are 0.2 USD.
    const estimate = client().estimateCostUsd({ topic: 'autumn' }, 100)!;
    expect(estimate).toBeGreaterThan(0.2);
    expect(approval!.params).toEqual({ step: 'model:haiku', model: MODEL, estimate: `$${estimate.toFixed(4)}`, spent: '$0.000000', budget: '$0.000100' });
    expect(approval!.summary).toContain('budget of $0.000100');

    await t.runtime.decide(approval!.id, ALICE, 'approve');
    const done = await waitForRun(t.runtime, run.id, 'succeeded');
    expect(done.output).toBe('autumn moonlight');
    expect(fake.requests).toHaveLength(1);
  });

  it('a rejected budget approval fails the step for good, naming the budget, and sends nothing', async () => {
    const wf = budgeted(0.0002);
    const t = await rt([wf]);
    const run = await t.runtime.startRun({ workflow: wf.name, input: { topic: 'winter' }, requester: ME });
    await waitForRun(t.runtime, run.id, 'waiting');
    const [approval] = await listRunApprovals(db.pool, run.id);
    await t.runtime.decide(approval!.id, ALICE, 'reject', 'too dear');
    const failed = await waitForRun(t.runtime, run.id, 'failed');
    expect(failed.error).toMatchObject({ code: 'TG_APPROVAL_REJECTED' });
    expect((failed.error as { message: string }).message).toMatch(
      /Model step "model:haiku" not run: its estimated \$\S+ would take the run past its budget of \$0\.000200 .*rejected .*"too dear"/,
    );
    expect(fake.requests).toHaveLength(0);
  });

  it('a step within the budget runs without asking anyone', async () => {
    const wf = budgeted(10);
    const t = await rt([wf]);
    fake.script({ text: 'spring rain' });
    const run = await t.runtime.startRun({ workflow: wf.name, input: { topic: 'spring' } });
    const done = await waitForRun(t.runtime, run.id, 'succeeded');
    expect(done.output).toBe('spring rain');
    expect(await listRunApprovals(db.pool, run.id)).toEqual([]);
  });
});

describe('neverSend', () => {
  it("a withheld field's value never reaches the model server, while the run keeps it", async () => {
    const SECRET = 'Project Nightjar 7731';
    const wf = defineWorkflow({
      name: 'brief',
      version: 1,
      description: 'summarise a note without its code name',
      input: z.object({ note: z.string(), codename: z.string() }),
      neverSend: ['codename'],
      run: async (ctx) =>
        ctx.model.generate(
          'Summarise the note in one line.',
          { note: ctx.input.note, codename: ctx.input.codename },
          { prompt: { name: 'brief', version: 1 } },
        ),
    });
    const t = await rt([wf]);
    fake.script({ text: 'A launch is planned.' });
    const run = await t.runtime.startRun({ workflow: 'brief', input: { note: `We launch ${SECRET} on Monday.`, codename: SECRET } });
    await waitForRun(t.runtime, run.id, 'succeeded');
    expect(fake.requests).toHaveLength(1);
    const sent = fake.requests[0]!.raw;
    expect(sent).not.toContain('Nightjar');
    expect(sent).toContain('[[WITHHELD]]');
    expect(sent).toContain('on Monday');
    expect((await t.runtime.getRun(run.id)).run.input).toEqual({ note: `We launch ${SECRET} on Monday.`, codename: SECRET });
  });

  it('a neverSend field the input does not have is refused when the workflow is defined', () => {
    expect(() =>
      defineWorkflow({ name: 'typo', version: 1, description: 'x', input: z.object({ codename: z.string() }), neverSend: ['codeName'], run: async () => null }),
    ).toThrow('Workflow "typo" lists "codeName" in neverSend, which its input does not have (its fields: codename).');
  });
});
