/**
 * OpenTelemetry traces (issue 10, item 1): one trace per run, kept across advances, workers and
 * waits, with a span for every step attempt, tool call, HTTP request and approval wait, and the
 * run's root span; nothing at all when no OTEL_* variable is set.
 *
 * Spans are caught by an in-memory exporter (installTracing with a SimpleSpanProcessor), the
 * database is real, and the tool calls a real local HTTP server that records the headers it got.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createChat } from '../src/chat/index.ts';
import { loadConfig } from '../src/config/config.ts';
import { parseCommand } from '../src/intents/command.ts';
import type { ModelCallRecord } from '../src/model/types.ts';
import { NonRetriableError, RetryAfterError } from '../src/common/errors.ts';
import { parseProjectConfig, type ProjectConfig } from '../src/config/project-config.ts';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { tracingSettings } from '../src/telemetry/tracing-config.ts';
import { withModelCallSpan } from '../src/telemetry/tracing-spans.ts';
import { installTracing, startTracing, tracingEnabled, type TracingHandle } from '../src/telemetry/tracing.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { startHttpTarget, type HttpTarget } from './helpers/http-target.ts';
import { testLogger } from './helpers/log.ts';
import { startFakeOpenAI } from './fakes/openai/index.ts';
import { createModelClient } from '../src/model/client.ts';
import { modelSettings } from '../src/model/settings.ts';
import { memoryPlatform } from './fakes/chat-memory.ts';

const ALICE = 'slack:T1:UALICE';

let db: TestDb;
let target: HttpTarget;
let project: ProjectConfig;
let exporter: InMemorySpanExporter;
let handle: TracingHandle | undefined;

beforeAll(async () => {
  db = await createTestDb();
  target = await startHttpTarget(() => ({ status: 200, json: { version: '1.2.3' } }));
  project = parseProjectConfig({ tools: { 'http.request': { allowedHosts: [target.allowEntry] } } });
});
afterEach(async () => {
  await handle?.shutdown();
  handle = undefined;
  target.requests.length = 0;
});
afterAll(async () => {
  await target.close();
  await db.close();
});

async function traced(sampler?: Parameters<typeof installTracing>[0]['sampler']): Promise<void> {
  exporter = new InMemorySpanExporter();
  handle = await installTracing({ spanProcessors: [new SimpleSpanProcessor(exporter)], serviceName: 'tollgate-test', ...(sampler ? { sampler } : {}) });
}

function runtimeFor(...workflows: WorkflowDefinition[]): Runtime {
  return new Runtime({ pool: db.pool, registry: new WorkflowRegistry().register(...workflows), log: testLogger(), project });
}

async function storedTraceparent(runId: string): Promise<string | null> {
  const { rows } = await db.pool.query<{ tp: string | null }>(`SELECT trace_context->>'traceparent' AS tp FROM tollgate.runs WHERE id = $1`, [runId]);
  return rows[0]?.tp ?? null;
}

const ms = (t: [number, number]) => t[0] * 1000 + Math.round(t[1] / 1e6);

/** Each span as `name <- parent name` (the root: `name <- (root)`), in the order they ended. */
function tree(spans: ReadableSpan[]): string[] {
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  return spans.map((s) => {
    const parentId = s.parentSpanContext?.spanId;
    return `${s.name} <- ${parentId ? (byId.get(parentId)?.name ?? `(missing ${parentId})`) : '(root)'}`;
  });
}

let flakyCalls = 0;
const release = defineWorkflow({
  name: 'release',
  version: 1,
  description: 'a step that fails once, an approval, a tool call',
  input: z.object({ url: z.string() }),
  tools: ['http.request'],
  run: async (ctx) => {
    const built = await ctx.step(
      'build',
      () => {
        flakyCalls++;
        // Fails once (with a code, retried after 20 ms), then succeeds.
        if (flakyCalls === 1) throw new RetryAfterError('the build farm is busy', 20);
        return 'artifact-7';
      },
      { retry: { maxAttempts: 3 } },
    );
    const approval = await ctx.approval('ship', { policy: { approvers: [ALICE] }, summary: `Ship ${built}?`, params: { artifact: built } });
    if (!approval.approved) return 'stopped';
    const res = await ctx.tool<{ status: number; body: { version: string } }>('http.request', { method: 'GET', url: `${ctx.input.url}/version?token=s3cret` });
    return res.body.version;
  },
}) as unknown as WorkflowDefinition;

describe('a run is one trace', () => {
  it('a run with a retried step, an approval decided by a person and a tool call: one trace with the expected span tree and attributes, and traceparent sent to the called service', async () => {
    await traced();
    flakyCalls = 0;
    const runtime = runtimeFor(release);
    const run = await runtime.startRun({ workflow: 'release', input: { url: target.url } });
    const traceparent = await storedTraceparent(run.id);
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const [, traceId, rootSpanId] = traceparent!.split('-');

    // First advance (worker a): "build" fails, is retried in-process, succeeds; the approval suspends the run.
    expect(await runtime.advance(run.id, 'worker-a')).toBe('waiting');
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['step build', 'step build']);

    // A person decides, through the runtime; the next advance (worker b) goes on and ends the run.
    const { rows } = await db.pool.query<{ id: string; created_at: Date; resolved_at: Date | null }>(
      'SELECT id, created_at, resolved_at FROM tollgate.approvals WHERE run_id = $1',
      [run.id],
    );
    const approval = rows[0]!;
    expect((await runtime.decide(approval.id, ALICE, 'approve', undefined, { via: 'slack' })).resolved).toBe('approved');
    expect(await runtime.advance(run.id, 'worker-b')).toBe('finished');
    expect((await runtime.getRun(run.id)).run).toMatchObject({ status: 'succeeded', output: '1.2.3' });

    const spans = exporter.getFinishedSpans();
    // One trace: the one stored with the run.
    expect(new Set(spans.map((s) => s.spanContext().traceId))).toEqual(new Set([traceId]));
    expect(tree(spans)).toEqual([
      'step build <- run release',
      'step build <- run release',
      'approval ship <- run release',
      'GET <- tool http.request',
      'tool http.request <- step http.request',
      'step http.request <- run release',
      'run release <- (root)',
    ]);
    const named = (name: string) => spans.filter((s) => s.name === name);
    const [root] = named('run release');
    expect(root!.spanContext().spanId).toBe(rootSpanId);

    // The retried step: two attempts, the first failed with its code, the second fine.
    const [first, second] = named('step build');
    expect(first!.attributes).toEqual({
      'tollgate.run.id': run.id,
      'tollgate.workflow.name': 'release',
      'tollgate.step.name': 'build',
      'tollgate.step.index': 0,
      'tollgate.step.attempt': 1,
      'tollgate.step.kind': 'step',
      'error.type': 'TG_RETRY_AFTER',
      'tollgate.error.code': 'TG_RETRY_AFTER',
    });
    expect(first!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'the build farm is busy' });
    expect(first!.events.map((e) => [e.name, e.attributes?.['exception.message']])).toEqual([['exception', 'the build farm is busy']]);
    expect(second!.attributes).toMatchObject({ 'tollgate.step.attempt': 2, 'tollgate.step.name': 'build' });
    expect(second!.attributes['error.type']).toBeUndefined();
    expect(second!.status.code).toBe(SpanStatusCode.UNSET);

    // The approval's wait: from when it was opened to when it was decided, with the decision.
    const [wait] = named('approval ship');
    const resolved = (await db.pool.query<{ resolved_at: Date }>('SELECT resolved_at FROM tollgate.approvals WHERE id = $1', [approval.id])).rows[0]!
      .resolved_at;
    expect(ms(wait!.startTime)).toBe(approval.created_at.getTime());
    expect(ms(wait!.endTime)).toBe(resolved.getTime());
    expect(wait!.attributes).toMatchObject({
      'tollgate.run.id': run.id,
      'tollgate.approval.id': approval.id,
      'tollgate.approval.decision': 'approved',
      'tollgate.approval.approvals': 1,
      'tollgate.approval.rejections': 0,
      'tollgate.step.kind': 'approval',
    });
    expect(wait!.events.map((e) => [e.name, e.attributes])).toEqual([
      ['approval.decided', { 'tollgate.approval.decision': 'approve', 'tollgate.approval.via': 'slack' }],
    ]);
    // Who decided stays in the database (retention reaches it there), not in the trace.
    expect(JSON.stringify([wait!.attributes, wait!.events])).not.toContain('UALICE');

    // The tool call and its HTTP request (HTTP semantic conventions), the query's values redacted.
    const [toolStep] = named('step http.request');
    expect(toolStep!.attributes).toMatchObject({ 'tollgate.step.kind': 'tool', 'tollgate.step.attempt': 1, 'tollgate.step.index': 2 });
    const [tool] = named('tool http.request');
    expect(tool!.attributes).toMatchObject({ 'tollgate.tool.name': 'http.request', 'tollgate.tool.effect': 'read', 'tollgate.run.id': run.id });
    const [get] = named('GET');
    expect(get!.kind).toBe(SpanKind.CLIENT);
    expect(get!.attributes).toEqual({
      'http.request.method': 'GET',
      'url.full': `${target.url}/version?token=REDACTED`,
      'url.scheme': 'http',
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(target.url).port),
      'http.response.status_code': 200,
    });

    // The called service got the run's trace, with the HTTP span as its parent.
    expect(target.requests).toHaveLength(1);
    expect(target.requests[0]!.headers.traceparent).toBe(`00-${traceId}-${get!.spanContext().spanId}-01`);

    // The root span: the run from its creation to its end, exported once.
    const created = (await runtime.getRun(run.id)).run;
    expect(ms(root!.startTime)).toBe(created.created_at.getTime());
    expect(ms(root!.endTime)).toBe(created.finished_at!.getTime());
    expect(root!.attributes).toEqual({
      'tollgate.run.id': run.id,
      'tollgate.workflow.name': 'release',
      'tollgate.workflow.version': 1,
      'tollgate.run.status': 'succeeded',
      'tollgate.run.recoveries': 0,
    });
    expect(root!.resource.attributes['service.name']).toBe('tollgate-test');
  });

  it('a run that fails for good: its root span and its step carry the error and its code', async () => {
    await traced();
    const doomed = defineWorkflow({
      name: 'doomed',
      version: 1,
      description: 'fails at once',
      input: z.object({}),
      run: async (ctx) =>
        ctx.step('check', () => {
          throw new NonRetriableError('the artifact is not signed', undefined, 'TG_TOOL_HTTP_STATUS');
        }),
    }) as unknown as WorkflowDefinition;
    const runtime = runtimeFor(doomed);
    const run = await runtime.startRun({ workflow: 'doomed', input: {} });
    expect(await runtime.advance(run.id, 'worker-a')).toBe('finished');
    // A replay of an ended run exports nothing more.
    expect(await runtime.advance(run.id, 'worker-a')).toBe('already-finished');

    const spans = exporter.getFinishedSpans();
    expect(tree(spans)).toEqual(['step check <- run doomed', 'run doomed <- (root)']);
    const [step, root] = spans;
    expect(step!.status.code).toBe(SpanStatusCode.ERROR);
    expect(step!.attributes).toMatchObject({ 'tollgate.error.code': 'TG_TOOL_HTTP_STATUS', 'error.type': 'TG_TOOL_HTTP_STATUS' });
    expect(root!.status.code).toBe(SpanStatusCode.ERROR);
    expect(root!.attributes).toMatchObject({ 'tollgate.run.status': 'failed', 'tollgate.error.code': 'TG_STEP_FAILED', 'error.type': 'TG_STEP_FAILED' });
  });

  it('a run resumed by another worker after its first one died mid-step continues the same trace', async () => {
    await traced();
    let entered!: () => void;
    const inFlight = new Promise<void>((resolve) => (entered = resolve));
    let unblock!: () => void;
    const blocked = new Promise<void>((resolve) => (unblock = resolve));
    const resumable = defineWorkflow({
      name: 'resumable',
      version: 1,
      description: 'its second step kills its worker the first time',
      input: z.object({}),
      run: async (ctx) => {
        await ctx.step('fetch', () => 'fetched');
        await ctx.step('deploy', async ({ attempt }) => {
          if (attempt === 1) {
            // What a worker's death does to the run: its connection, and with it the run's
            // advisory lock, is gone mid-step, and this attempt never ends.
            await db.pool.query(
              `SELECT pg_terminate_backend(pid) FROM pg_locks
               WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
            );
            entered();
            await blocked;
            throw new Error('this worker is gone');
          }
          return 'deployed';
        });
        return ctx.step('notify', () => 'notified');
      },
    }) as unknown as WorkflowDefinition;
    // Two workers: two runtimes on the same database, sharing nothing else.
    const workerA = runtimeFor(resumable);
    const workerB = runtimeFor(resumable);
    const run = await workerB.startRun({ workflow: 'resumable', input: {} });
    const [, traceId, rootSpanId] = (await storedTraceparent(run.id))!.split('-');

    const abandoned = workerA.advance(run.id, 'worker-a');
    await inFlight;
    expect((await workerB.getRun(run.id)).run.status).toBe('running');
    expect(await workerB.advance(run.id, 'worker-b')).toBe('finished');
    // What was exported by the time the run ended (a copy: the exporter keeps appending).
    const spans = [...exporter.getFinishedSpans()];
    // Worker a's dead attempt is still "running" for it; release it now so it can fail quietly.
    unblock();
    await expect(abandoned).rejects.toMatchObject({ code: 'TG_DB_UNREACHABLE' });

    expect(new Set(spans.map((s) => s.spanContext().traceId))).toEqual(new Set([traceId]));
    expect(tree(spans)).toEqual(['step fetch <- run resumable', 'step deploy <- run resumable', 'step notify <- run resumable', 'run resumable <- (root)']);
    const [fetch, deploy, , root] = spans;
    expect(fetch!.attributes['tollgate.step.attempt']).toBe(1);
    expect(deploy!.attributes['tollgate.step.attempt']).toBe(2);
    expect(root!.spanContext().spanId).toBe(rootSpanId);
    expect(root!.attributes).toMatchObject({ 'tollgate.run.status': 'succeeded', 'tollgate.run.recoveries': 1 });
  });

  it('a run created while tracing was off gets its trace context at its first advance with tracing on', async () => {
    const plain = defineWorkflow({
      name: 'plain',
      version: 1,
      description: 'one step',
      input: z.object({}),
      run: async (ctx) => ctx.step('only', () => 1),
    }) as unknown as WorkflowDefinition;
    const runtime = runtimeFor(plain);
    const run = await runtime.startRun({ workflow: 'plain', input: {} });
    expect(await storedTraceparent(run.id)).toBeNull();
    await traced();
    expect(await runtime.advance(run.id, 'worker-a')).toBe('finished');
    const traceparent = await storedTraceparent(run.id);
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const spans = exporter.getFinishedSpans();
    expect(tree(spans)).toEqual(['step only <- run plain', 'run plain <- (root)']);
    expect(spans.every((s) => traceparent!.includes(s.spanContext().traceId))).toBe(true);
  });

  it('honours the sampler: a run not sampled stores its decision and records no span', async () => {
    await traced({ name: 'parentbased_always_off', ratio: 1 });
    const runtime = runtimeFor(release);
    flakyCalls = 1; // no failure this time
    const run = await runtime.startRun({ workflow: 'release', input: { url: target.url } });
    expect(await storedTraceparent(run.id)).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(await runtime.advance(run.id, 'worker-a')).toBe('waiting');
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});

describe('chat deliveries and model calls', () => {
  it("each chat delivery is a span in its run's trace, with its platform and outcome, and a refusal with the platform's code", async () => {
    await traced();
    const plain = defineWorkflow({
      name: 'plain',
      version: 1,
      description: 'one step',
      input: z.object({}),
      run: async (ctx) => ctx.step('only', () => 1),
    }) as unknown as WorkflowDefinition;
    const registry = new WorkflowRegistry().register(plain);
    const runtime = new Runtime({ pool: db.pool, registry, log: testLogger(), project });
    const mem = memoryPlatform();
    const chat = createChat({ pool: db.pool, runtime, registry, log: testLogger(), platforms: [mem] });
    const start = async (conversation: string) =>
      (
        await chat.core.submit({
          kind: 'command',
          command: parseCommand('run plain'),
          actor: { platform: 'memory', tenant: 'W1', user: 'REQ' },
          where: { platform: 'memory', tenant: 'W1', conversation, thread: null },
          key: { key: `cmd:${conversation}`, kind: 'command' },
          replyVia: 'return',
        })
      ).runId!;

    const ok = await start('room-ok');
    const okTrace = (await storedTraceparent(ok))!.split('-')[1];
    expect(await chat.deliverer.deliverRun(ok)).toBe('posted');
    const refused = await start('room-refused');
    mem.failNext('post', { kind: 'permanent' });
    await chat.deliverer.deliverRun(refused);

    const spans = exporter.getFinishedSpans().filter((s) => s.name.startsWith('chat.deliver'));
    expect(spans.map((s) => [s.name, s.attributes['tollgate.run.id'], s.attributes['tollgate.chat.platform'], s.attributes['tollgate.chat.outcome']])).toEqual([
      ['chat.deliver run', ok, 'memory', 'posted'],
      ['chat.deliver run', refused, 'memory', 'given_up'],
    ]);
    // Under the run's root span, in the run's trace (stored by the chat intake's grouped write).
    expect(spans[0]!.spanContext().traceId).toBe(okTrace);
    expect(spans[0]!.parentSpanContext?.spanId).toBe((await storedTraceparent(ok))!.split('-')[2]);
    expect(spans[0]!.status.code).toBe(SpanStatusCode.UNSET);
    expect(spans[1]!.status.code).toBe(SpanStatusCode.ERROR);
    expect(spans[1]!.attributes['error.type']).toBe('refused');
  });

  it("withModelCallSpan: a model call as a gen_ai span under the active step, with tokens, cost and the failure's code", async () => {
    await traced();
    const record = (over: Partial<ModelCallRecord>): ModelCallRecord => ({
      model: 'gpt-4o-mini-2024-07-18',
      prompt: { name: 'triage', version: 3 },
      request: [],
      response: {},
      inputTokens: 120,
      outputTokens: 30,
      costUsd: 0.0004,
      latencyMs: 12,
      dropped: [],
      error: null,
      ...over,
    });
    const req = { model: 'gpt-4o-mini', baseUrl: 'https://api.openai.com/v1', maxOutputTokens: 200, prompt: { name: 'triage', version: 3 } };
    await withModelCallSpan(req, async () => ({ output: 'ok', record: record({}) }));
    const failed = Object.assign(new Error('the model did not answer in time'), {
      code: 'TG_MODEL_TIMEOUT',
      record: record({ inputTokens: 120, outputTokens: null, costUsd: null, error: { code: 'TG_MODEL_TIMEOUT', message: 'timeout' } }),
    });
    await expect(withModelCallSpan(req, async () => Promise.reject(failed))).rejects.toBe(failed);

    const [good, bad] = exporter.getFinishedSpans();
    expect(good!.name).toBe('chat gpt-4o-mini');
    expect(good!.kind).toBe(SpanKind.CLIENT);
    expect(good!.attributes).toEqual({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.system': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.request.max_tokens': 200,
      'tollgate.prompt.name': 'triage',
      'tollgate.prompt.version': 3,
      'server.address': 'api.openai.com',
      'server.port': 443,
      'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
      'gen_ai.usage.input_tokens': 120,
      'gen_ai.usage.output_tokens': 30,
      'tollgate.model.cost_usd': 0.0004,
    });
    expect(bad!.status.code).toBe(SpanStatusCode.ERROR);
    expect(bad!.attributes).toMatchObject({ 'gen_ai.usage.input_tokens': 120, 'error.type': 'TG_MODEL_TIMEOUT', 'tollgate.error.code': 'TG_MODEL_TIMEOUT' });
    expect(bad!.attributes['gen_ai.usage.output_tokens']).toBeUndefined();
  });

  it("a workflow's model step: the call through the model client is a gen_ai span under the step's attempt, in the run's trace", async () => {
    await traced();
    const fake = await startFakeOpenAI();
    try {
      fake.script({ json: { label: 'urgent' }, usage: { prompt_tokens: 90, completion_tokens: 4 } });
      const settings = modelSettings(loadConfig({ TOLLGATE_MODEL: 'local-model', OPENAI_BASE_URL: fake.url }), project);
      const model = createModelClient({ ...settings, prices: { 'local-model': { inputPerMillion: 1, outputPerMillion: 2 } } }, testLogger());
      const triage = defineWorkflow({
        name: 'triage',
        version: 1,
        description: 'classify a ticket',
        input: z.object({ text: z.string() }),
        run: async (ctx) => ctx.model.classify(['urgent', 'later'], ctx.input.text, { prompt: { name: 'triage', version: 2 } }),
      }) as unknown as WorkflowDefinition;
      const rt = new Runtime({ pool: db.pool, registry: new WorkflowRegistry().register(triage), log: testLogger(), project, model });
      const run = await rt.startRun({ workflow: 'triage', input: { text: 'the site is down' } });
      expect(await rt.advance(run.id, 'worker-a')).toBe('finished');
      expect((await rt.getRun(run.id)).run.status).toBe('succeeded');

      const spans = exporter.getFinishedSpans();
      const call = spans.find((x) => x.name === 'chat local-model');
      expect(tree(spans.filter((x) => x.spanContext().traceId === call?.spanContext().traceId))).toEqual([
        'chat local-model <- step model:triage',
        'step model:triage <- run triage',
        'run triage <- (root)',
      ]);
      expect(call!.attributes).toMatchObject({
        'gen_ai.request.model': 'local-model',
        'gen_ai.usage.input_tokens': 90,
        'gen_ai.usage.output_tokens': 4,
        'tollgate.prompt.name': 'triage',
        'tollgate.prompt.version': 2,
        'server.address': '127.0.0.1',
      });
    } finally {
      await fake.close();
    }
  });
});

describe('export over OTLP', () => {
  it("startTracing with OTEL_EXPORTER_OTLP_ENDPOINT sends the run's spans to <endpoint>/v1/traces as OTLP JSON, under OTEL_SERVICE_NAME, by shutdown", async () => {
    const collector = await startHttpTarget(() => ({ status: 200, json: {} }));
    try {
      const config = loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_SERVICE_NAME: 'tollgate-otlp',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test',
      });
      handle = await startTracing(config.tracing, testLogger());
      expect(handle.installed).toBe(true);
      const plain = defineWorkflow({
        name: 'plain',
        version: 1,
        description: 'one step',
        input: z.object({}),
        run: async (ctx) => ctx.step('only', () => 1),
      }) as unknown as WorkflowDefinition;
      const runtime = runtimeFor(plain);
      const run = await runtime.startRun({ workflow: 'plain', input: {} });
      expect(await runtime.advance(run.id, 'worker-a')).toBe('finished');
      await handle.shutdown();
      handle = undefined;

      expect(collector.requests.map((r) => [r.method, r.url, r.headers['content-type']])).toEqual([['POST', '/v1/traces', 'application/json']]);
      const body = JSON.parse(collector.requests[0]!.body) as {
        resourceSpans: {
          resource: { attributes: { key: string; value: { stringValue?: string } }[] };
          scopeSpans: { scope: { name: string }; spans: { name: string; traceId: string }[] }[];
        }[];
      };
      const [resourceSpans] = body.resourceSpans;
      const attr = (k: string) => resourceSpans!.resource.attributes.find((a) => a.key === k)?.value.stringValue;
      expect(attr('service.name')).toBe('tollgate-otlp');
      expect(attr('deployment.environment')).toBe('test');
      const spans = resourceSpans!.scopeSpans.flatMap((s) => s.spans.map((span) => ({ scope: s.scope.name, ...span })));
      expect(spans.map((s) => [s.scope, s.name])).toEqual([
        ['tollgate', 'step only'],
        ['tollgate', 'run plain'],
      ]);
      const traceId = (await storedTraceparent(run.id))!.split('-')[1];
      expect(spans.every((s) => s.traceId === traceId)).toBe(true);
      expect(tracingEnabled()).toBe(false);
    } finally {
      await collector.close();
    }
  });
});

describe('tracing is off unless configured', () => {
  it('with no OTEL_* variable set, no provider is installed and nothing is recorded: no span, no stored context, no traceparent sent', async () => {
    const config = loadConfig({});
    expect(config.tracing.enabled).toBe(false);
    const started = await startTracing(config.tracing, testLogger());
    expect(started.installed).toBe(false);
    expect(tracingEnabled()).toBe(false);
    // The API's global provider is still the no-op one: a span made through it records nothing.
    const probe = trace.getTracer('probe').startSpan('probe');
    expect(probe.isRecording()).toBe(false);
    expect(probe.spanContext().traceId).toBe('00000000000000000000000000000000');

    flakyCalls = 1;
    const runtime = runtimeFor(release);
    const run = await runtime.startRun({ workflow: 'release', input: { url: target.url } });
    expect(await runtime.advance(run.id, 'worker-a')).toBe('waiting');
    const { rows } = await db.pool.query<{ id: string }>('SELECT id FROM tollgate.approvals WHERE run_id = $1', [run.id]);
    await runtime.decide(rows[0]!.id, ALICE, 'approve');
    expect(await runtime.advance(run.id, 'worker-a')).toBe('finished');
    expect((await runtime.getRun(run.id)).run).toMatchObject({ status: 'succeeded', trace_context: null });
    expect(target.requests).toHaveLength(1);
    expect(target.requests[0]!.headers.traceparent).toBeUndefined();
  });

  it('reads the standard variables: on with an OTLP endpoint, off when disabled or with the exporter "none", the sampler and service name as set', () => {
    expect(tracingSettings({})).toMatchObject({ enabled: false });
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toMatchObject({
      enabled: true,
      endpoint: 'http://collector:4318/v1/traces',
      serviceName: 'tollgate',
      sampler: { name: 'parentbased_always_on', ratio: 1 },
    });
    expect(
      tracingSettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://otel.example.com/custom/path', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://ignored:4318' }),
    ).toMatchObject({
      enabled: true,
      endpoint: 'https://otel.example.com/custom/path',
    });
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }).enabled).toBe(false);
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' }).enabled).toBe(false);
    expect(
      tracingSettings({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
        OTEL_SERVICE_NAME: 'tollgate-eu',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,service.name=overridden,team=pay%2Cments',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
      }),
    ).toMatchObject({
      endpoint: 'http://collector:4318/v1/traces',
      serviceName: 'tollgate-eu',
      resourceAttributes: { 'deployment.environment': 'prod', team: 'pay,ments' },
      sampler: { name: 'parentbased_traceidratio', ratio: 0.25 },
    });
    // Other programs' settings do not stop Tollgate while its tracing is off.
    expect(tracingSettings({ OTEL_TRACES_SAMPLER: 'whatever' }).enabled).toBe(false);
  });

  it('refuses bad values with tracing on, naming each variable, the value and what is expected', () => {
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318', OTEL_TRACES_SAMPLER: 'sometimes', OTEL_TRACES_SAMPLER_ARG: '2' })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT: got "collector:4318"; expected an http or https URL[\s\S]*OTEL_TRACES_SAMPLER: got "sometimes"; expected one of "always_on"/,
    );
    expect(() => tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' })).toThrow(
      /OTEL_TRACES_SAMPLER_ARG: got "2"; expected a sampling ratio between 0 and 1/,
    );
    expect(() => tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL: got "grpc"; expected "http\/json"/,
    );
    expect(() => tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(
      /OTEL_TRACES_EXPORTER: got "zipkin"/,
    );
  });
});
