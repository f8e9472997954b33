/**
 * The hash an approval binds to (invariant 6): sha256 over canonical JSON (object keys sorted,
 * no whitespace) of exactly the parameters shown. The same value, hashed again anywhere, gives
 * the same hex string; any change to a value, a key or nesting gives another.
 */
import { createHash } from 'node:crypto';

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const s = JSON.stringify(value);
    // undefined, functions and symbols have no JSON form; treat them as null like JSON arrays do.
    return s === undefined ? 'null' : s;
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return canonicalJson((value as { toJSON: () => unknown }).toJSON());
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function paramsHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}
