/**
 * One chat completion against the model server, within one deadline.
 *
 * Deadline. The `openai` package waits 10 minutes by default, retries timeouts, and sleeps for
 * whatever `Retry-After` says, in a sleep no signal can cut short. So the package's own retries
 * are off (`maxRetries: 0`) and this module retries instead (connection errors, 408, 409, 429,
 * 5xx; up to `maxRetries`), inside one overall deadline of `timeoutMs` per call: every attempt
 * gets the time that is left as its timeout and an abort signal (the deadline's, combined with
 * the caller's), and a wait the server asks for that would end past the deadline is not waited
 * for: the call fails at once. No call takes longer than `timeoutMs` in all.
 */
import type OpenAI from 'openai';
import { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import type { ChatCompletion, ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { backoffDelay, pause, type Backoff } from '../common/backoff.ts';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type { ModelCallErrorCode } from './errors.ts';
import type { ModelSettings } from './types.ts';

/** The first retry waits about this long, doubling each time up to 8 s (as the package does); less a random quarter at most. */
const BACKOFF: Backoff = { firstMs: 500, maxMs: 8_000 };

export interface Failure {
  code: ModelCallErrorCode;
  message: string;
  cause?: unknown;
  /** The answer as parsed, when it was JSON that did not fit: recorded instead of the raw text. */
  response?: unknown;
}

/** A call that failed, with what the record and the error will say; its code is the failure's own. */
export class CallFailed extends TollgateError {
  constructor(readonly failure: Failure) {
    super(failure.code, failure.message, {}, failure.cause === undefined ? undefined : { cause: failure.cause });
  }
}

export const seconds = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${Math.round(ms / 100) / 10} s`);

/** One chat completion, retried within the call's deadline (see the module comment). */
export async function complete(
  client: OpenAI,
  body: ChatCompletionCreateParamsNonStreaming,
  callerSignal: AbortSignal | undefined,
  settings: Pick<ModelSettings, 'timeoutMs' | 'maxRetries'>,
  log: Logger,
): Promise<ChatCompletion> {
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
      const wait = asked ?? backoffDelay(BACKOFF, attempt) * (1 - Math.random() * 0.25);
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

function isRetriable(e: unknown): boolean {
  if (e instanceof APIConnectionError) return true;
  if (!(e instanceof APIError) || e.status === undefined) return false;
  return e.status === 408 || e.status === 409 || e.status === 429 || e.status >= 500;
}

/** What the server asked to wait (`retry-after-ms`, or `Retry-After` in seconds or as a date). */
function retryAfterMs(e: unknown): number | undefined {
  // `instanceof` gives APIError<any, any, any>; its declared defaults type the headers.
  const headers = e instanceof APIError ? (e as APIError).headers : undefined;
  if (!headers) return undefined;
  const ms = Number.parseFloat(headers.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const header = headers.get('retry-after');
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

/**
 * A rejection reason as an Error. An abort's reason (a DOMException unless the caller gave one) and
 * the client's failures are Errors already and pass through as they are; anything else is wrapped.
 */
function asError(e: unknown): Error {
  return e instanceof Error ? e : new TollgateError('TG_INTERNAL', 'The model call was stopped with a reason that is not an Error.', {}, { cause: e });
}

/** Rejects as soon as the signal aborts, whatever the promise does (it is left to settle unobserved). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  promise.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(asError(signal.reason));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(asError(e));
      },
    );
  });
}
