/**
 * The model client (issue 8): one OpenAI-compatible chat completions endpoint, used for
 * structured answers (free-text intents, `ctx.model.extract/classify`) and text
 * (`ctx.model.generate`).
 *
 * Deadline. The `openai` package waits 10 minutes by default, retries timeouts, and sleeps for
 * whatever `Retry-After` says, in a sleep no signal can cut short. So the package's own retries
 * are off (`maxRetries: 0`) and this module retries instead (connection errors, 408, 409, 429,
 * 5xx; up to `maxRetries`), inside one overall deadline of `timeoutMs` per call: every attempt
 * gets the time that is left as its timeout and an abort signal (the deadline's, combined with
 * the caller's), and a wait the server asks for that would end past the deadline is not waited
 * for: the call fails at once. No call takes longer than `timeoutMs` in all.
 *
 * Answers. A structured answer is read from the raw JSON content: fields its schema does not
 * have (`approved: true`) are dropped, named in the record and logged; the rest must match the
 * schema, or the call fails with TG_MODEL_BAD_ANSWER. `chat.completions.parse` is not used: it
 * keeps nothing of an answer that fails the schema, and the record must show what was said.
 *
 * Privacy. The input is redacted before it is sent (src/model/redact.ts) and the answer
 * re-hydrated before it is returned; the record keeps only what was sent and what came back.
 */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import type { ChatCompletion, ChatCompletionCreateParamsNonStreaming, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { z } from 'zod';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { ModelCallError, type ModelCallErrorCode } from './errors.ts';
import { createRedactor, type Redactor } from './redact.ts';
import { isModelConfigured } from './settings.ts';
import { observeModelCall } from '../telemetry/metrics.ts';
import { withModelCallSpan } from '../telemetry/tracing-spans.ts';
import type { ModelCallRecord, ModelClient, ModelResult, ModelSettings, PromptRef, StructuredRequest, TextRequest } from './types.ts';

/** `new OpenAI()` refuses to start without a key; a local server needs none. */
const LOCAL_KEY = 'not-needed-local';

/** The first retry waits about this long, doubling each time up to `MAX_BACKOFF_MS` (as the package does). */
const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 8_000;

/** Characters per token, for estimates before a call (no tokenizer for an unknown model). */
const CHARS_PER_TOKEN = 4;

interface Failure {
  code: ModelCallErrorCode;
  message: string;
  cause?: unknown;
  /** The answer as parsed, when it was JSON that did not fit: recorded instead of the raw text. */
  response?: unknown;
}

class CallFailed extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}

const seconds = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${Math.round(ms / 100) / 10} s`);

/** Structured output names allow letters, digits, `_` and `-` (64 at most); prompt names may have dots. */
const formatName = (prompt: PromptRef) => prompt.name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64) || 'answer';

export function createModelClient(settings: ModelSettings, log: Logger): ModelClient {
  const configured = isModelConfigured(settings);
  const redactor: Redactor = createRedactor(settings.redact);
  const openai = configured
    ? new OpenAI({
        // Everything is passed explicitly: the package would otherwise read OPENAI_* from the
        // environment itself, and only src/config/config.ts reads the environment.
        baseURL: settings.baseUrl ?? 'https://api.openai.com/v1',
        apiKey: settings.apiKey ?? LOCAL_KEY,
        organization: null,
        project: null,
        webhookSecret: null,
        timeout: settings.timeoutMs,
        maxRetries: 0,
      })
    : undefined;
  const price = settings.model ? settings.prices[settings.model] : undefined;

  const costOf = (inputTokens: number | null, outputTokens: number | null): number | null =>
    price && inputTokens !== null && outputTokens !== null ? (inputTokens * price.inputPerMillion + outputTokens * price.outputPerMillion) / 1_000_000 : null;

  function requireConfigured(): { openai: OpenAI; model: string } {
    if (!openai || !settings.model) {
      throw new TollgateError(
        'TG_MODEL_NOT_CONFIGURED',
        'No model is configured: set TOLLGATE_MODEL to a model name, and OPENAI_BASE_URL (an OpenAI-compatible server, including /v1) or OPENAI_API_KEY.',
      );
    }
    return { openai, model: settings.model };
  }

  /** One chat completion, retried within the call's deadline (see the module comment). */
  async function complete(client: OpenAI, body: ChatCompletionCreateParamsNonStreaming, callerSignal: AbortSignal | undefined): Promise<ChatCompletion> {
    const deadlineAt = performance.now() + settings.timeoutMs;
    const deadline = AbortSignal.timeout(settings.timeoutMs);
    const signal = callerSignal ? AbortSignal.any([deadline, callerSignal]) : deadline;
    const aborted = (): Failure =>
      callerSignal?.aborted && !deadline.aborted
        ? { code: 'TG_MODEL_TIMEOUT', message: 'The model call was cancelled before the model answered.' }
        : { code: 'TG_MODEL_TIMEOUT', message: `The model did not answer within ${seconds(settings.timeoutMs)}.` };

    for (let attempt = 0; ; attempt++) {
      const left = deadlineAt - performance.now();
      if (signal.aborted || left <= 0) throw new CallFailed(aborted());
      try {
        return await untilAborted(client.chat.completions.create(body, { signal, timeout: Math.max(1, Math.ceil(left)), maxRetries: 0 }), signal);
      } catch (e) {
        if (signal.aborted || e instanceof APIConnectionTimeoutError) throw new CallFailed({ ...aborted(), cause: e });
        const failure = describeFailure(e);
        if (!isRetriable(e) || attempt >= settings.maxRetries) throw new CallFailed(failure);
        const asked = retryAfterMs(e);
        const wait = asked ?? Math.min(FIRST_BACKOFF_MS * 2 ** attempt, MAX_BACKOFF_MS) * (1 - Math.random() * 0.25);
        if (performance.now() + wait >= deadlineAt) {
          throw new CallFailed(
            asked !== undefined
              ? {
                  code: 'TG_MODEL_TIMEOUT',
                  message: `The model server asked to wait ${seconds(asked)} before trying again, longer than the ${seconds(settings.timeoutMs)} a call may take.`,
                  cause: e,
                }
              : failure,
          );
        }
        log.debug({ attempt: attempt + 1, waitMs: Math.round(wait), error: failure.message }, 'model call failed; retrying');
        if (!(await pause(wait, signal))) throw new CallFailed(aborted());
      }
    }
  }

  type Interpret<T> = (content: string | null, completion: ChatCompletion) => { response: unknown; output: T; dropped?: string[] };

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
    const record: ModelCallRecord = {
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
      completion = await complete(client, { ...extra, model, messages }, signal);
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
      if (choice?.finish_reason === 'length') throw new CallFailed({ code: 'TG_MODEL_BAD_ANSWER', message: 'The model’s answer was cut off at its length limit.' });
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
      return call({ ...req, extra, interpret: (content) => {
        if (content === null || content === '') throw new CallFailed({ code: 'TG_MODEL_BAD_ANSWER', message: 'The model answered nothing.' });
        let raw: unknown;
        try {
          raw = JSON.parse(content);
        } catch {
          throw new CallFailed({ code: 'TG_MODEL_BAD_ANSWER', message: 'The model’s answer was not JSON.' });
        }
        const { kept, dropped } = splitExtraFields(req.schema, raw);
        const parsed = req.schema.safeParse(kept);
        if (!parsed.success) {
          const issue = parsed.error.issues[0]!;
          const at = issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : '';
          throw new CallFailed({ code: 'TG_MODEL_BAD_ANSWER', message: `The model’s answer did not match what was asked for (${at}${issue.message}).`, cause: parsed.error, response: raw });
        }
        return { response: raw, output: parsed.data as z.infer<S>, dropped };
      } });
    },

    text(req: TextRequest): Promise<ModelResult<string>> {
      const extra = req.maxOutputTokens !== undefined ? { max_completion_tokens: req.maxOutputTokens } : {};
      return call({ ...req, extra, interpret: (content) => {
        if (content === null) throw new CallFailed({ code: 'TG_MODEL_BAD_ANSWER', message: 'The model answered no text.' });
        return { response: content, output: content };
      } });
    },

    estimateCostUsd(input: unknown, maxOutputTokens = 0): number | null {
      if (!price) return null;
      const inputTokens = Math.ceil((JSON.stringify(input ?? null)?.length ?? 0) / CHARS_PER_TOKEN);
      return (inputTokens * price.inputPerMillion + maxOutputTokens * price.outputPerMillion) / 1_000_000;
    },
  };
}

/**
 * The answer without the fields its schema does not have, and their paths (`approved`,
 * `contact.role`): a model told to pick and fill cannot add anything by answering more.
 */
export function splitExtraFields(schema: z.ZodType, value: unknown, path: string[] = []): { kept: unknown; dropped: string[] } {
  const object = objectShape(schema);
  if (object && value && typeof value === 'object' && !Array.isArray(value)) {
    const kept: Record<string, unknown> = {};
    const dropped: string[] = [];
    for (const [k, v] of Object.entries(value)) {
      const field = object[k];
      if (!field) {
        dropped.push([...path, k].join('.'));
        continue;
      }
      const inner = splitExtraFields(field, v, [...path, k]);
      kept[k] = inner.kept;
      dropped.push(...inner.dropped);
    }
    return { kept, dropped };
  }
  const element = arrayElement(schema);
  if (element && Array.isArray(value)) {
    const dropped: string[] = [];
    const kept = value.map((v, i) => {
      const inner = splitExtraFields(element, v, [...path, String(i)]);
      dropped.push(...inner.dropped);
      return inner.kept;
    });
    return { kept, dropped };
  }
  return { kept: value, dropped: [] };
}

type Def = { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType>; element?: z.ZodType; in?: z.ZodType };
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** Looks through nullable/optional/default wrappers and pipes to the schema that holds the value. */
function unwrap(s: z.ZodType): z.ZodType {
  for (let i = 0; i < 20; i++) {
    const def = defOf(s);
    if (def.innerType) s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else break;
  }
  return s;
}

const objectShape = (s: z.ZodType) => {
  const def = defOf(unwrap(s));
  return def.type === 'object' ? def.shape : undefined;
};
const arrayElement = (s: z.ZodType) => {
  const def = defOf(unwrap(s));
  return def.type === 'array' ? def.element : undefined;
};

function isRetriable(e: unknown): boolean {
  if (e instanceof APIConnectionError) return true;
  if (!(e instanceof APIError) || e.status === undefined) return false;
  return e.status === 408 || e.status === 409 || e.status === 429 || e.status >= 500;
}

/** What the server asked to wait (`retry-after-ms`, or `Retry-After` in seconds or as a date). */
function retryAfterMs(e: unknown): number | undefined {
  if (!(e instanceof APIError) || !e.headers) return undefined;
  const ms = Number.parseFloat(e.headers.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const header = e.headers.get('retry-after');
  if (!header) return undefined;
  const s = Number.parseFloat(header);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

function describeFailure(e: unknown): Failure {
  if (e instanceof APIConnectionError) return { code: 'TG_MODEL_UNAVAILABLE', message: 'The model server could not be reached.', cause: e };
  if (e instanceof APIError && e.status !== undefined) {
    const said = (e.error as { message?: unknown } | undefined)?.message;
    const detail = typeof said === 'string' && said ? `: ${said.length > 200 ? `${said.slice(0, 200)}…` : said}` : '';
    return { code: 'TG_MODEL_UNAVAILABLE', message: `The model server answered with an error (HTTP ${e.status}${detail}).`, cause: e };
  }
  return { code: 'TG_MODEL_UNAVAILABLE', message: `The model call failed: ${(e as Error)?.message ?? String(e)}.`, cause: e };
}

/** Rejects as soon as the signal aborts, whatever the promise does (it is left to settle unobserved). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  promise.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** Waits `ms`, or less when the signal aborts first; true when the whole wait passed. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
