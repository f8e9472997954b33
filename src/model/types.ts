/**
 * The model layer's shapes (issue 8), shared by the client (src/model/client.ts), the chat's
 * free-text intents (src/chat/understand.ts) and model steps (`ctx.model`, src/model/steps.ts).
 *
 * The model never executes anything (DESIGN.md, invariants 7 and 9): it picks among registered
 * workflows and fills their schemas, or judges and extracts inside a step. Everything it is sent
 * is redacted first (src/model/redact.ts), its answer is re-hydrated inside the runtime only, and
 * every call is recorded as a `model.called` event in the hash-chained journal.
 */
import type { z } from 'zod';

/** `TOLLGATE_CONFIG` → `model.prices["<model>"]`, in USD per million tokens. */
export interface ModelPrice {
  inputPerMillion: number;
  outputPerMillion: number;
}

/** A pattern from configuration (`model.redact[]`) replaced before anything is sent. */
export interface RedactPattern {
  /** The placeholder's label: `[[<NAME>_1]]`. Upper-case letters, digits, underscores. */
  name: string;
  /** A JavaScript regular expression's source; matched globally. */
  pattern: string;
  flags?: string;
}

export interface ModelSettings {
  /** TOLLGATE_MODEL; undefined when not configured. */
  model: string | undefined;
  /** OPENAI_BASE_URL, including `/v1`. */
  baseUrl: string | undefined;
  /** OPENAI_API_KEY; a placeholder is used for a local server that needs none. */
  apiKey: string | undefined;
  /** TOLLGATE_MODEL_TIMEOUT_MS (default 30000): the overall deadline of one call, retries included. */
  timeoutMs: number;
  /** TOLLGATE_MODEL_MAX_RETRIES (default 2). */
  maxRetries: number;
  prices: Readonly<Record<string, ModelPrice>>;
  redact: readonly RedactPattern[];
}

/** Which prompt a call used, recorded with it: a change of wording is a new version. */
export interface PromptRef {
  name: string;
  version: number;
}

/** One model call as the journal keeps it (payload of a `model.called` event). Only redacted text. */
export interface ModelCallRecord {
  model: string;
  prompt: PromptRef;
  /** The request's messages exactly as sent: redacted. */
  request: unknown;
  /** The answer as received (placeholders, before re-hydration); null when the call failed. */
  response: unknown;
  inputTokens: number | null;
  outputTokens: number | null;
  /** USD from the configured prices; null when the model has no price configured. */
  costUsd: number | null;
  latencyMs: number;
  /** Fields the model answered that its schema does not have: dropped, and named here. */
  dropped: string[];
  /** Set when the call failed: `TG_MODEL_TIMEOUT`, `TG_MODEL_UNAVAILABLE`, `TG_MODEL_BAD_ANSWER` … */
  error: { code: string; message: string } | null;
}

export interface StructuredRequest<S extends z.ZodObject> {
  prompt: PromptRef;
  /** Instructions (not redacted: written by us, never by users). */
  system: string;
  /** The data: any JSON value; redacted before it is sent. */
  input: unknown;
  /**
   * The answer's schema as the model gets it: strict-mode compatible (every field present,
   * `.nullable()` for "not given"; see `modelSchemaFor`). The answer is checked with it, extra
   * fields dropped (and recorded in `dropped`), then re-hydrated.
   */
  schema: S;
  /**
   * Values never sent, not even as a placeholder: wherever one appears in `input` it becomes
   * `[[WITHHELD]]` (the values of a workflow's `neverSend` input fields).
   */
  withhold?: readonly string[];
  signal?: AbortSignal;
}

export interface TextRequest {
  prompt: PromptRef;
  system: string;
  input: unknown;
  withhold?: readonly string[];
  /** Upper bound of the answer's tokens (also used for the cost estimate). */
  maxOutputTokens?: number;
  signal?: AbortSignal;
}

/** A call's result: the re-hydrated answer plus the record to journal. */
export interface ModelResult<T> {
  output: T;
  record: ModelCallRecord;
}

export interface ModelClient {
  /** TOLLGATE_MODEL and OPENAI_BASE_URL or OPENAI_API_KEY are set. */
  readonly configured: boolean;
  readonly model: string | undefined;
  /**
   * Throws `ModelCallError` (carrying the failed call's record) on a timeout, an error answer,
   * or an answer that does not match the schema; never waits longer than `timeoutMs` in all.
   */
  structured<S extends z.ZodObject>(req: StructuredRequest<S>): Promise<ModelResult<z.infer<S>>>;
  text(req: TextRequest): Promise<ModelResult<string>>;
  /** USD estimate of a call before it is made (input length / 4 tokens + `maxOutputTokens`); null without a price. */
  estimateCostUsd(input: unknown, maxOutputTokens?: number): number | null;
}
