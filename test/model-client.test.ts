/**
 * The model client through the fake OpenAI-compatible server (test/fakes/openai): answers are
 * parsed and recorded with tokens, cost and latency; extra fields are dropped; errors are
 * retried within one overall deadline; a model that is down, rate-limited past the deadline or
 * hanging fails with a clear code instead of waiting.
 */
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../src/config/config.ts';
import { createModelClient } from '../src/model/client.ts';
import { ModelCallError } from '../src/model/errors.ts';
import { modelSettings } from '../src/model/settings.ts';
import type { ModelSettings } from '../src/model/types.ts';
import { EMPTY_PROJECT_CONFIG, parseProjectConfig } from '../src/config/project-config.ts';
import { startFakeOpenAI, type FakeOpenAI } from './fakes/openai/index.ts';
import { testLogger } from './helpers/log.ts';

let fake: FakeOpenAI;
beforeAll(async () => {
  fake = await startFakeOpenAI();
});
afterEach(() => fake.reset());
afterAll(() => fake.close());

const settings = (over: Partial<ModelSettings> = {}): ModelSettings => ({
  model: 'test-model',
  baseUrl: fake.url,
  apiKey: undefined,
  timeoutMs: 30_000,
  maxRetries: 2,
  prices: { 'test-model': { inputPerMillion: 2, outputPerMillion: 8 } },
  redact: [],
  ...over,
});

const schema = z.object({ vendor: z.string().nullable(), amount: z.number().nullable() });
const request = { prompt: { name: 'intent', version: 3 }, system: 'Fill the purchase order.', input: { text: 'PO for Acme, 1200' }, schema };

async function failure(p: Promise<unknown>): Promise<ModelCallError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ModelCallError);
  return e as ModelCallError;
}

describe('model client', () => {
  it('parses a structured answer and records model, prompt, tokens, cost and latency', async () => {
    fake.script({ json: { vendor: 'Acme', amount: 1200 }, usage: { prompt_tokens: 1000, completion_tokens: 500 } });
    const client = createModelClient(settings(), testLogger());
    const { output, record } = await client.structured(request);

    expect(output).toEqual({ vendor: 'Acme', amount: 1200 });
    expect(record).toMatchObject({
      model: 'test-model',
      prompt: { name: 'intent', version: 3 },
      inputTokens: 1000,
      outputTokens: 500,
      response: { vendor: 'Acme', amount: 1200 },
      dropped: [],
      error: null,
    });
    // 1000 × $2/M + 500 × $8/M
    expect(record.costUsd).toBeCloseTo(0.006, 10);
    expect(record.latencyMs).toBeGreaterThanOrEqual(0);
    expect(Number.isInteger(record.latencyMs)).toBe(true);

    // What was sent: the model, a strict JSON schema, the system prompt and the input as JSON.
    expect(fake.requests).toHaveLength(1);
    const body = fake.requests[0]!.body!;
    expect(body.model).toBe('test-model');
    expect(body.response_format).toMatchObject({ type: 'json_schema', json_schema: { name: 'intent', strict: true } });
    expect(body.messages).toEqual([
      { role: 'system', content: 'Fill the purchase order.' },
      { role: 'user', content: JSON.stringify({ text: 'PO for Acme, 1200' }) },
    ]);
    expect(record.request).toEqual(body.messages);
    // A local server with no key still gets a key (the package refuses to start without one).
    expect(fake.requests[0]!.headers.authorization).toBe('Bearer not-needed-local');
  });

  it('records no cost for a model without a configured price', async () => {
    fake.script({ json: { vendor: 'Acme', amount: null } });
    const client = createModelClient(settings({ prices: {} }), testLogger());
    const { record } = await client.structured(request);
    expect(record.costUsd).toBeNull();
    expect(record.inputTokens).toBeGreaterThan(0);
    expect(client.estimateCostUsd({ text: 'x' }, 100)).toBeNull();
  });

  it('estimates a cost before a call from the input length and the output bound', () => {
    const client = createModelClient(settings(), testLogger());
    // 400 characters of JSON ≈ 100 tokens in; 1000 tokens out.
    const input = 'x'.repeat(398);
    expect(client.estimateCostUsd(input, 1000)).toBeCloseTo((100 * 2 + 1000 * 8) / 1e6, 10);
  });

  it('drops a field the schema does not have (approved: true), names it in the record, and keeps it out of the answer', async () => {
    fake.script({ json: { vendor: 'Acme', amount: 5, approved: true } });
    const client = createModelClient(settings(), testLogger());
    const { output, record } = await client.structured({ ...request, schema: z.strictObject(schema.shape) });
    expect(output).toEqual({ vendor: 'Acme', amount: 5 });
    expect(output).not.toHaveProperty('approved');
    expect(record.dropped).toEqual(['approved']);
    // The record shows what the model said.
    expect(record.response).toEqual({ vendor: 'Acme', amount: 5, approved: true });
  });

  it('fails with TG_MODEL_BAD_ANSWER when the answer does not match the schema, keeping the answer in the record', async () => {
    fake.script({ json: { vendor: 'Acme', amount: 'a lot' } });
    const client = createModelClient(settings(), testLogger());
    const e = await failure(client.structured(request));
    expect(e.code).toBe('TG_MODEL_BAD_ANSWER');
    expect(e.message).toMatch(/amount/);
    expect(e.record.error).toEqual({ code: 'TG_MODEL_BAD_ANSWER', message: e.message });
    expect(e.record.response).toEqual({ vendor: 'Acme', amount: 'a lot' });
    expect(e.record.inputTokens).toBeGreaterThan(0);
  });

  it('fails with TG_MODEL_BAD_ANSWER when the answer is not JSON', async () => {
    fake.script({ text: 'Sure! Here is your PO.' });
    const client = createModelClient(settings(), testLogger());
    const e = await failure(client.structured(request));
    expect(e.code).toBe('TG_MODEL_BAD_ANSWER');
    expect(e.record.response).toBe('Sure! Here is your PO.');
  });

  it('retries a 500 and returns the answer that follows', async () => {
    fake.script({ status: 500 }, { json: { vendor: 'Acme', amount: 1 } });
    const client = createModelClient(settings(), testLogger());
    const { output } = await client.structured(request);
    expect(output).toEqual({ vendor: 'Acme', amount: 1 });
    expect(fake.requests).toHaveLength(2);
  });

  it('fails with TG_MODEL_UNAVAILABLE when the server keeps answering errors after the retries', async () => {
    fake.script({ status: 503 }, { status: 503 });
    const client = createModelClient(settings({ maxRetries: 1 }), testLogger());
    const e = await failure(client.structured(request));
    expect(e.code).toBe('TG_MODEL_UNAVAILABLE');
    expect(e.message).toMatch(/HTTP 503/);
    expect(fake.requests).toHaveLength(2);
    expect(e.record).toMatchObject({ model: 'test-model', response: null, error: { code: 'TG_MODEL_UNAVAILABLE' } });
  });

  it('fails with TG_MODEL_UNAVAILABLE when nothing listens at the base URL', async () => {
    const gone = await startFakeOpenAI();
    const url = gone.url;
    await gone.close();
    const client = createModelClient(settings({ baseUrl: url, maxRetries: 1 }), testLogger());
    const e = await failure(client.structured(request));
    expect(e.code).toBe('TG_MODEL_UNAVAILABLE');
    expect(e.message).toBe('The model server could not be reached.');
  });

  it('fails with TG_MODEL_TIMEOUT instead of honouring a Retry-After longer than the deadline', async () => {
    fake.script({ status: 429, retryAfter: 3600 }, { json: { vendor: 'never', amount: null } });
    const client = createModelClient(settings({ timeoutMs: 300 }), testLogger());
    const e = await failure(client.structured(request));
    expect(e.code).toBe('TG_MODEL_TIMEOUT');
    expect(e.message).toMatch(/asked to wait 3600 s/);
    expect(fake.requests).toHaveLength(1);
  });

  it('fails with TG_MODEL_TIMEOUT when the server never answers', async () => {
    fake.respond(() => ({ hang: true }));
    const client = createModelClient(settings({ timeoutMs: 300 }), testLogger());
    const e = await failure(client.structured(request));
    expect(e.code).toBe('TG_MODEL_TIMEOUT');
    expect(e.message).toBe('The model did not answer within 300 ms.');
    expect(e.record.error?.code).toBe('TG_MODEL_TIMEOUT');
    expect(e.record.response).toBeNull();
  });

  it('stops when the caller aborts', async () => {
    fake.respond(() => ({ hang: true }));
    const client = createModelClient(settings(), testLogger());
    const caller = new AbortController();
    const pending = client.structured({ ...request, signal: caller.signal });
    setTimeout(() => caller.abort(), 50);
    const e = await failure(pending);
    expect(e.code).toBe('TG_MODEL_TIMEOUT');
    expect(e.message).toMatch(/cancelled/);
  });

  it('answers text calls, with the output bound sent', async () => {
    fake.script({ text: 'Dear Acme, …', usage: { prompt_tokens: 10, completion_tokens: 4 } });
    const client = createModelClient(settings(), testLogger());
    const { output, record } = await client.text({
      prompt: { name: 'reply', version: 1 },
      system: 'Write a reply.',
      input: { to: 'Acme' },
      maxOutputTokens: 200,
    });
    expect(output).toBe('Dear Acme, …');
    expect(record).toMatchObject({ response: 'Dear Acme, …', inputTokens: 10, outputTokens: 4 });
    expect(fake.requests[0]!.body!.max_completion_tokens).toBe(200);
    expect(fake.requests[0]!.body!.response_format).toBeUndefined();
  });

  it('is not configured without TOLLGATE_MODEL, or without a base URL or key, and then says what to set', async () => {
    const log = testLogger();
    expect(createModelClient(modelSettings(loadConfig({}), EMPTY_PROJECT_CONFIG), log).configured).toBe(false);
    expect(createModelClient(modelSettings(loadConfig({ TOLLGATE_MODEL: 'm' }), EMPTY_PROJECT_CONFIG), log).configured).toBe(false);
    expect(createModelClient(modelSettings(loadConfig({ OPENAI_BASE_URL: fake.url }), EMPTY_PROJECT_CONFIG), log).configured).toBe(false);
    expect(createModelClient(modelSettings(loadConfig({ TOLLGATE_MODEL: 'm', OPENAI_API_KEY: 'sk-x' }), EMPTY_PROJECT_CONFIG), log).configured).toBe(true);
    expect(createModelClient(modelSettings(loadConfig({ TOLLGATE_MODEL: 'm', OPENAI_BASE_URL: fake.url }), EMPTY_PROJECT_CONFIG), log).configured).toBe(true);

    const client = createModelClient(modelSettings(loadConfig({ OPENAI_BASE_URL: fake.url }), EMPTY_PROJECT_CONFIG), log);
    await expect(client.structured(request)).rejects.toMatchObject({
      code: 'TG_MODEL_NOT_CONFIGURED',
      message: expect.stringMatching(/TOLLGATE_MODEL[\s\S]*OPENAI_BASE_URL[\s\S]*OPENAI_API_KEY/),
    });
    await expect(client.text({ prompt: { name: 'x', version: 1 }, system: '', input: '' })).rejects.toMatchObject({ code: 'TG_MODEL_NOT_CONFIGURED' });
    expect(fake.requests).toHaveLength(0);
  });

  it('takes its settings from the environment and the project configuration', () => {
    const s = modelSettings(
      loadConfig({ TOLLGATE_MODEL: 'gpt-x', OPENAI_BASE_URL: 'http://127.0.0.1:1/v1', TOLLGATE_MODEL_TIMEOUT_MS: '5000', TOLLGATE_MODEL_MAX_RETRIES: '0' }),
      parseProjectConfig({ model: { prices: { 'gpt-x': { inputPerMillion: 1, outputPerMillion: 2 } }, redact: [{ name: 'TICKET', pattern: 'T-\\d+' }] } }),
    );
    expect(s).toMatchObject({
      model: 'gpt-x',
      baseUrl: 'http://127.0.0.1:1/v1',
      apiKey: undefined,
      timeoutMs: 5000,
      maxRetries: 0,
      prices: { 'gpt-x': { inputPerMillion: 1, outputPerMillion: 2 } },
      redact: [{ name: 'TICKET', pattern: 'T-\\d+' }],
    });
  });
});

describe('fake OpenAI server', () => {
  const sdk = () => new OpenAI({ baseURL: fake.url, apiKey: 'k', maxRetries: 0 });

  it('answers tool calls as OpenAI does', async () => {
    fake.script({ toolCalls: [{ name: 'pick', arguments: { workflow: 'deploy' } }], usage: { prompt_tokens: 7, completion_tokens: 3 } });
    const c = await sdk().chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    expect(c).toMatchObject({
      object: 'chat.completion',
      model: 'm',
      choices: [{ finish_reason: 'tool_calls' }],
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
    });
    const call = c.choices[0]!.message.tool_calls![0]!;
    expect(call.type === 'function' && call.function).toEqual({ name: 'pick', arguments: '{"workflow":"deploy"}' });
  });

  it('streams content deltas, then the usage, then [DONE]', async () => {
    fake.script({ text: 'Hello there, streaming world', usage: { prompt_tokens: 5, completion_tokens: 6 } });
    const stream = await sdk().chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('Hello there, streaming world');
    expect(usage).toEqual({ prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 });
  });

  it('streams tool-call deltas that the package assembles', async () => {
    fake.script({ toolCalls: [{ name: 'pick', arguments: { workflow: 'purchase-order', confidence: 0.9 } }] });
    const stream = sdk().chat.completions.stream({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    const final = await stream.finalChatCompletion();
    const call = final.choices[0]!.message.tool_calls![0]!;
    expect(call.type === 'function' && JSON.parse(call.function.arguments)).toEqual({ workflow: 'purchase-order', confidence: 0.9 });
  });

  it('fails loudly when a test forgot to script a reply', async () => {
    await expect(sdk().chat.completions.create({ model: 'm', messages: [] })).rejects.toMatchObject({
      status: 500,
      message: expect.stringMatching(/no scripted reply/),
    });
  });
});
