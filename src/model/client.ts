/**
 * The model client (issue 8): one OpenAI-compatible chat completions endpoint, used for
 * structured answers (free-text intents, `ctx.model.extract/classify`) and text
 * (`ctx.model.generate`).
 *
 * Deadline. Each call is one chat completion within one deadline of `timeoutMs`, retried by
 * src/model/complete.ts (the package's own retries are off): no call takes longer in all.
 *
 * Answers. A structured answer is read from the raw JSON content: fields its schema does not
 * have (`approved: true`) are dropped, named in the record and logged; the rest must match the
 * schema, or the call fails with TG_MODEL_BAD_ANSWER. `chat.completions.parse` is not used: it
 * keeps nothing of an answer that fails the schema, and the record must show what was said.
 *
 * Privacy. The input is redacted before it is sent (src/model/redact.ts) and the answer
 * re-hydrated before it is returned; the record keeps only what was sent and what came back.
 */
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import type { ChatCompletion, ChatCompletionCreateParamsNonStreaming, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { z } from 'zod';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { ModelCallError } from './errors.ts';
import { CallFailed, complete, type Failure } from './complete.ts';
import { formatName, structuredAnswer, textAnswer, type Interpret } from './answers.ts';
import { createRedactor, type Redactor } from './redact.ts';
import { isModelConfigured } from './settings.ts';
import { observeModelCall } from '../telemetry/metrics.ts';
import { withModelCallSpan } from '../telemetry/tracing-spans.ts';
import type { ModelCallRecord, ModelClient, ModelResult, ModelSettings, PromptRef, StructuredRequest, TextRequest } from './types.ts';

/** `new OpenAI()` refuses to start without a key; a local server needs none. */
const LOCAL_KEY = 'not-needed-local';

/** Characters per token, for estimates before a call (no tokenizer for an unknown model). */
const CHARS_PER_TOKEN = 4;

/** The package's client, with everything passed explicitly. */
function openaiClient(settings: ModelSettings): OpenAI {
  return new OpenAI({
    // Everything is passed explicitly: the package would otherwise read OPENAI_* from the
    // environment itself, and only src/config/config.ts reads the environment.
    baseURL: settings.baseUrl ?? 'https://api.openai.com/v1',
    apiKey: settings.apiKey ?? LOCAL_KEY,
    organization: null,
    project: null,
    webhookSecret: null,
    timeout: settings.timeoutMs,
    maxRetries: 0,
  });
}

/** The client and model to call, or TG_MODEL_NOT_CONFIGURED saying what to set. */
function configuredClient(openai: OpenAI | undefined, settings: ModelSettings): { openai: OpenAI; model: string } {
  if (!openai || !settings.model) {
    throw new TollgateError(
      'TG_MODEL_NOT_CONFIGURED',
      'No model is configured: set TOLLGATE_MODEL to a model name, and OPENAI_BASE_URL (an OpenAI-compatible server, including /v1) or OPENAI_API_KEY.',
    );
  }
  return { openai, model: settings.model };
}

/** A call's record before the model answers: what was sent, nothing yet of what came back. */
function newRecord(model: string, prompt: PromptRef, messages: ChatCompletionMessageParam[]): ModelCallRecord {
  return {
    model,
    prompt: { name: prompt.name, version: prompt.version },
    request: messages,
    response: null,
    inputTokens: null,
    outputTokens: null,
    costUsd: null,
    latencyMs: 0,
    dropped: [],
    error: null,
  };
}

/** One call: what is sent, and `interpret`, which turns the completion into the answer. */
interface CallArgs<T> {
  prompt: PromptRef;
  system: string;
  input: unknown;
  withhold?: readonly string[];
  signal?: AbortSignal;
  extra: Partial<ChatCompletionCreateParamsNonStreaming>;
  interpret: Interpret<T>;
}

export function createModelClient(settings: ModelSettings, log: Logger): ModelClient {
  const configured = isModelConfigured(settings);
  const redactor: Redactor = createRedactor(settings.redact);
  const openai = configured ? openaiClient(settings) : undefined;
  const price = settings.model ? settings.prices[settings.model] : undefined;

  const costOf = (inputTokens: number | null, outputTokens: number | null): number | null =>
    price && inputTokens !== null && outputTokens !== null ? (inputTokens * price.inputPerMillion + outputTokens * price.outputPerMillion) / 1_000_000 : null;

  const requireConfigured = () => configuredClient(openai, settings);

  /**
   * One call as a span (`gen_ai.*`, under the step that makes it) and in the metrics (tokens and
   * cost by model), whether it succeeds or fails: every model call of the process passes here.
   */
  async function call<T>(a: CallArgs<T>): Promise<ModelResult<T>> {
    const { model } = requireConfigured();
    const span = { model, baseUrl: settings.baseUrl, prompt: a.prompt, maxOutputTokens: a.extra.max_completion_tokens ?? undefined };
    try {
      const result = await withModelCallSpan(span, () => callOnce(a));
      observeModelCall(result.record);
      return result;
    } catch (e) {
      if (e instanceof ModelCallError) observeModelCall(e.record);
      throw e;
    }
  }

  /** Runs one call and builds its record, whatever happens. */
  async function callOnce<T>({ prompt, system, input, withhold, signal, extra, interpret }: CallArgs<T>): Promise<ModelResult<T>> {
    const { openai: client, model } = requireConfigured();
    const sent = redactor.redact(input, withhold ?? []);
    const messages: ChatCompletionMessageParam[] = [
      { role: 'system', content: system },
      { role: 'user', content: JSON.stringify(sent.value ?? null) },
    ];
    const record = newRecord(model, prompt, messages);
    const started = performance.now();
    const fail = (f: Failure): never => {
      record.latencyMs = Math.round(performance.now() - started);
      if (f.response !== undefined) record.response = f.response;
      record.error = { code: f.code, message: f.message };
      log.warn({ model, prompt: record.prompt, code: f.code, latencyMs: record.latencyMs }, f.message);
      throw new ModelCallError(f.code, f.message, record, f.cause === undefined ? undefined : { cause: f.cause });
    };

    let completion: ChatCompletion;
    try {
      completion = await complete(client, { ...extra, model, messages }, signal, settings, log);
    } catch (e) {
      if (e instanceof CallFailed) return fail(e.failure);
      throw e;
    }
    record.latencyMs = Math.round(performance.now() - started);
    record.inputTokens = completion.usage?.prompt_tokens ?? null;
    record.outputTokens = completion.usage?.completion_tokens ?? null;
    record.costUsd = costOf(record.inputTokens, record.outputTokens);
    const choice = completion.choices[0];
    const content = choice?.message.content ?? null;
    record.response = content;
    try {
      if (choice?.message.refusal) throw new CallFailed({ code: 'TG_MODEL_BAD_ANSWER', message: `The model refused to answer: ${choice.message.refusal}` });
      if (choice?.finish_reason === 'length')
        throw new CallFailed({ code: 'TG_MODEL_BAD_ANSWER', message: 'The model’s answer was cut off at its length limit.' });
      const answer = interpret(content, completion);
      record.response = answer.response;
      record.dropped = answer.dropped ?? [];
      if (record.dropped.length > 0) {
        log.warn({ model, prompt: record.prompt, dropped: record.dropped }, 'The model answered fields its schema does not have; they were dropped.');
      }
      return { output: redactor.rehydrate(answer.output, sent.vault), record };
    } catch (e) {
      if (e instanceof CallFailed) return fail(e.failure);
      throw e;
    }
  }

  return {
    configured,
    model: settings.model,

    structured<S extends z.ZodObject>(req: StructuredRequest<S>): Promise<ModelResult<z.infer<S>>> {
      const extra = { response_format: zodResponseFormat(req.schema, formatName(req.prompt)) };
      return call({ ...req, extra, interpret: structuredAnswer(req.schema) });
    },

    text(req: TextRequest): Promise<ModelResult<string>> {
      const extra = req.maxOutputTokens !== undefined ? { max_completion_tokens: req.maxOutputTokens } : {};
      return call({ ...req, extra, interpret: textAnswer });
    },

    estimateCostUsd(input: unknown, maxOutputTokens = 0): number | null {
      if (!price) return null;
      const inputTokens = Math.ceil((JSON.stringify(input ?? null)?.length ?? 0) / CHARS_PER_TOKEN);
      return (inputTokens * price.inputPerMillion + maxOutputTokens * price.outputPerMillion) / 1_000_000;
    },
  };
}
