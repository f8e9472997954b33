/**
 * Tollgate's error registry: every error we raise on purpose has a stable `TG_*` code, so logs,
 * CLI exits and chat replies can be matched on it, and a message written for people (what
 * happened, why, how to fix it, with the value found).
 *
 * Some classes steer the runtime: `NonRetriableError` ends a step without more attempts,
 * `RetryAfterError` sets the next attempt's delay, `NondeterminismError` fails a run whose replay
 * no longer matches its journal.
 */

export const ERROR_CODES = {
  TG_CONFIG_INVALID: 'An environment variable or the project configuration file has a bad value.',
  TG_CONFIG_CONFLICT: 'A live process of this deployment runs with a different project configuration (src/config/digest.ts).',
  TG_DB_UNREACHABLE: 'PostgreSQL could not be reached.',
  TG_DB_AHEAD: 'The database has migrations this code does not know.',
  TG_DB_MIGRATION_DENIED: 'The schema needs migrating and this login may not change it.',
  TG_DB_TOO_OLD: 'The PostgreSQL server is older than version 14.',
  TG_DB_EMBEDDED: 'The embedded PostgreSQL could not be created or started in the data directory.',
  TG_WORKFLOW_UNKNOWN: 'No workflow with that name (or version) is registered.',
  TG_WORKFLOW_DUPLICATE: 'A workflow with that name and version is already registered.',
  TG_WORKFLOW_INVALID: 'A workflow definition has a bad name, version, neverSend field, budget or retry setting.',
  TG_DURATION_INVALID: "A duration is neither milliseconds >= 0 nor written like '500ms', '30s', '5m', '2h' or '1d'.",
  TG_INPUT_INVALID: "A run's input does not match its workflow's input schema.",
  TG_USAGE: 'A command-line option or argument has a bad value.',
  TG_COMMAND_SYNTAX:
    'A chat command (or a key=value parameter) could not be read: an unclosed quote, a parameter not written key=value or given twice, a missing workflow or run id.',
  TG_ORIGIN_INVALID: "A run's origin is not the CLI's or a chat's (src/runtime/origin.ts).",
  TG_RUN_NOT_FOUND: 'No run with that id.',
  TG_PRINCIPAL_INVALID: 'A principal is not written platform:tenant:user.',
  TG_NOT_ALLOWED: 'The principal may not do this to that run (not its requester or an operator), or the CLI user may not act as the principal named with --as.',
  TG_RUN_STATE: 'The run is not in a state that allows this action.',
  TG_RUN_BUSY: 'Another executor holds the run; the advance job is retried later.',
  TG_RUN_DEAD_LETTER: 'The run was interrupted more times than the recovery limit allows and was set aside until a person retries or cancels it.',
  TG_NONDETERMINISM: "A replay's steps no longer match the run's journal.",
  TG_STEP_FAILED: 'A step failed for good (all attempts used, or a non-retriable error).',
  TG_STEP_TIMEOUT: 'A step attempt ran longer than its timeout.',
  TG_NON_RETRIABLE: 'A step asked not to be retried.',
  TG_RETRY_AFTER: 'A step asked to be retried after a given delay.',
  TG_RUN_CANCELLED: 'The run was cancelled.',
  TG_WORKER_SHUTDOWN: 'The worker is shutting down: a step attempt was abandoned, and the run resumes on a worker that stays up.',
  TG_WORKER_THREAD: 'The worker thread is not running or ended before it answered, or src/worker/thread.ts was run on its own instead of by tollgate start.',
  TG_APPROVAL_NOT_FOUND: 'No approval with that id.',
  TG_APPROVAL_POLICY: 'An approval policy names no one who could satisfy it, or an unknown group.',
  TG_APPROVAL_REFUSED: 'A decision on an approval was not recorded (not allowed, expired, resolved or changed).',
  TG_DELEGATION_INVALID:
    'A delegation was refused: to oneself, to something that is not a principal, or an end date that is not YYYY-MM-DD, has passed or is more than 90 days away.',
  TG_DELEGATION_NOT_FOUND: 'No delegation with that id, or it has already ended or been revoked.',
  TG_DELEGATION_OWN_REQUEST:
    'A delegate may not approve this request: the requester is the delegate or anywhere in the chain of delegations that made them one, and the policy does not allow self-approval.',
  TG_APPROVAL_REJECTED: 'An approval gate was rejected or expired, so the run stopped.',
  TG_TOOL_UNKNOWN: 'No tool with that name is registered.',
  TG_TOOL_INVALID: 'A tool definition has a bad name or version.',
  TG_TOOL_DUPLICATE: 'Two different tools are registered under one name.',
  TG_TOOL_NOT_ALLOWED: 'The workflow does not list the tool it tried to call.',
  TG_TOOL_NOT_APPROVED: 'A write tool was called with parameters no approved gate of the run covers.',
  TG_TOOL_INPUT_INVALID: "A tool call's input does not match the tool's input schema.",
  TG_TOOL_OUTPUT_INVALID: "A tool's output does not match the tool's output schema.",
  TG_TOOL_HOST_NOT_ALLOWED: 'http.request was asked for a host that is not on its allowlist.',
  TG_TOOL_RESPONSE_TOO_LARGE: 'An HTTP response was larger than the configured cap.',
  TG_TOOL_HTTP_STATUS: 'An HTTP request answered with an error status.',
  TG_TOOL_HTTP_UNREACHABLE: 'http.request could not resolve the host, or the connection failed or was cut off; the step is retried.',
  TG_TOOL_HTTP_TIMEOUT: 'http.request got no complete answer within its timeout; the step is retried.',
  TG_HTTP_CLIENT_GONE: "A client closed its connection to Tollgate's HTTP server before its request body was complete (nobody to answer).",
  TG_HTTP_BODY_TOO_LARGE: "A request to Tollgate's HTTP server had a body over the size limit (answered 413).",
  TG_AUDIT_BROKEN: 'The audit chain does not verify: an event was edited, removed or reordered.',
  TG_AUDIT_KEY_INVALID: 'The audit key (TOLLGATE_AUDIT_KEY or the audit.key file) is not a key of at least 32 bytes.',
  TG_AUDIT_KEY_MISMATCH: "This process's audit key is not the one the database's events are chained with.",
  TG_CHAT_NOT_CONFIGURED: 'This process has no chat layer, or not the platform a recorded message names; the job is retried until it is configured.',
  TG_CHAT_PLATFORM_DUPLICATE: 'Two chat platforms are registered under one name.',
  TG_CHAT_REQUEST_INVALID: 'A request from a chat platform could not be read, or does not say who acted.',
  TG_CHAT_PLATFORM_BAD_ANSWER: "A chat platform's API answered without what it must return (a channel, a conversation id).",
  TG_TRACING_STATE: 'Tracing was installed twice in one thread.',
  TG_MODEL_NOT_CONFIGURED: 'No model is configured (TOLLGATE_MODEL, and OPENAI_BASE_URL or OPENAI_API_KEY).',
  TG_MODEL_TIMEOUT: 'A model call did not answer within TOLLGATE_MODEL_TIMEOUT_MS, retries included, or was cancelled.',
  TG_MODEL_UNAVAILABLE: 'The model server could not be reached or answered with an error, after the retries.',
  TG_MODEL_BAD_ANSWER: "The model's answer did not match the schema it was asked for.",
  TG_INTERNAL: 'An unexpected error.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class TollgateError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** Thrown inside a step: fail this step now, with no further attempts. */
export class NonRetriableError extends TollgateError {
  constructor(message: string, options?: ErrorOptions, code: ErrorCode = 'TG_NON_RETRIABLE', details: Record<string, unknown> = {}) {
    super(code, message, details, options);
  }
}

/** Thrown inside a step: try again, but not before `delayMs`. */
export class RetryAfterError extends TollgateError {
  readonly delayMs: number;
  constructor(message: string, delayMs: number, options?: ErrorOptions) {
    super('TG_RETRY_AFTER', message, { delayMs }, options);
    this.delayMs = delayMs;
  }
}

export class StepTimeoutError extends TollgateError {
  constructor(step: string, timeoutMs: number) {
    super('TG_STEP_TIMEOUT', `Step "${step}" timed out after ${timeoutMs} ms.`, { step, timeoutMs });
  }
}

export class NondeterminismError extends TollgateError {
  constructor(runId: string, index: number, expected: string, found: string) {
    super(
      'TG_NONDETERMINISM',
      `Run ${runId} is not deterministic: step #${index} is "${found}" on replay but the journal recorded "${expected}". ` +
        'The workflow code changed under a running run, or it branches on something that is not a step ' +
        '(Date.now(), Math.random(), I/O). Use ctx.now(), ctx.randomUUID() and ctx.step(), or register the change as a new workflow version.',
      { runId, index, expected, found },
    );
  }
}

/** What the workflow sees when a step has failed for good; carries the step's recorded error. */
export class StepFailedError extends TollgateError {
  constructor(step: string, attempts: number, cause: SerializedError) {
    super('TG_STEP_FAILED', `Step "${step}" failed after ${attempts} attempt(s): ${cause.message}`, { step, attempts, cause });
  }
}

export function isTollgateError(e: unknown): e is TollgateError {
  return e instanceof TollgateError;
}

/** An error as stored in the journal: JSON, with a bounded cause chain. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  details?: Record<string, unknown>;
  stack?: string;
  cause?: SerializedError;
}

/** PostgreSQL's jsonb cannot hold U+0000: an error carrying one (a remote's body) must still be recordable. */
const noNul = (s: string) => s.replace(/\u0000/g, '\ufffd');

export function serializeError(e: unknown, depth = 0): SerializedError {
  if (e instanceof Error) {
    const out: SerializedError = { name: noNul(e.name), message: noNul(e.message) };
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') out.code = code;
    if (e instanceof TollgateError && Object.keys(e.details).length > 0) out.details = { ...e.details };
    if (e.stack) out.stack = noNul(e.stack.split('\n').slice(0, 8).join('\n'));
    if (e.cause !== undefined && depth < 3) out.cause = serializeError(e.cause, depth + 1);
    return out;
  }
  return { name: 'NonError', message: noNul(typeof e === 'string' ? e : (JSON.stringify(e) ?? String(e))) };
}
