/**
 * A model call that failed: timed out (TG_MODEL_TIMEOUT), could not get an answer
 * (TG_MODEL_UNAVAILABLE), or got one that does not fit its schema (TG_MODEL_BAD_ANSWER).
 *
 * It carries the failed call's record (its `error` set) so the caller can journal it like any
 * other call. Its message is one sentence a chat user can read; what the failure means for them
 * ("nothing was started", "the step will be retried") is the caller's to add.
 */
import { TollgateError } from '../common/errors.ts';
import type { ModelCallRecord } from './types.ts';

export type ModelCallErrorCode = 'TG_MODEL_TIMEOUT' | 'TG_MODEL_UNAVAILABLE' | 'TG_MODEL_BAD_ANSWER';

export class ModelCallError extends TollgateError {
  declare readonly code: ModelCallErrorCode;
  readonly record: ModelCallRecord;
  constructor(code: ModelCallErrorCode, message: string, record: ModelCallRecord, options?: ErrorOptions) {
    super(code, message, { model: record.model, prompt: record.prompt }, options);
    this.record = record;
  }
}

export function isModelCallError(e: unknown): e is ModelCallError {
  return e instanceof ModelCallError;
}
