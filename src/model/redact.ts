/**
 * Redaction before anything is sent to a model (issue 8, item 2). Stage 1: the interface only,
 * values pass through unchanged; the placeholders come in the next commit.
 */
import type { RedactPattern } from './types.ts';

/** Placeholder → original value, for one call: kept inside the runtime, never sent or recorded. */
export type Vault = ReadonlyMap<string, string>;

export interface Redactor {
  redact(value: unknown, withhold?: readonly string[]): { value: unknown; vault: Vault };
  rehydrate<T>(value: T, vault: Vault): T;
}

export function createRedactor(_patterns: readonly RedactPattern[]): Redactor {
  return {
    redact: (value) => ({ value, vault: new Map() }),
    rehydrate: (value) => value,
  };
}
