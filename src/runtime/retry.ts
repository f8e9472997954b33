/**
 * Retry policy: exponential backoff with jitter, per step. A `RetryAfterError` overrides the
 * computed delay (e.g. a 429's Retry-After).
 */
import { RetryAfterError, TollgateError } from '../common/errors.ts';
import type { RetryPolicy } from './workflow.ts';

export type ResolvedRetry = Required<RetryPolicy>;

export const DEFAULT_RETRY: ResolvedRetry = Object.freeze({
  maxAttempts: 3,
  initialDelayMs: 200,
  factor: 2,
  maxDelayMs: 60_000,
  jitter: 0.2,
});

export function resolveRetry(policy: RetryPolicy | undefined): ResolvedRetry {
  const r = { ...DEFAULT_RETRY, ...(policy ?? {}) };
  if (!Number.isInteger(r.maxAttempts) || r.maxAttempts < 1) {
    throw new TollgateError('TG_WORKFLOW_INVALID', `retry.maxAttempts is ${r.maxAttempts}: give an integer >= 1 (1 means no retry).`);
  }
  return r;
}

/** Delay before attempt `attempt + 1`, after attempt `attempt` failed with `error`. */
export function nextDelayMs(policy: ResolvedRetry, attempt: number, error?: unknown, random: () => number = Math.random): number {
  if (error instanceof RetryAfterError) return Math.max(0, error.delayMs);
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** (attempt - 1));
  const spread = base * policy.jitter * (random() * 2 - 1);
  return Math.max(0, Math.round(base + spread));
}
