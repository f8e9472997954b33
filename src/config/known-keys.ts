/**
 * Keys a person wrote that nobody reads: zod's `z.object` drops them without a word, so a typo
 * (`groupz`, `vendr=Acme`, `approvalThresold`) silently means "not set". These helpers find such
 * keys against an object schema's own fields and suggest the closest known one.
 */

interface ObjectDef {
  _zod?: { def?: { type?: string; shape?: Record<string, unknown>; catchall?: unknown } };
}

/** The field names of a `z.object` schema that takes no other keys; undefined for any other schema. */
export function closedKeys(schema: unknown): string[] | undefined {
  const def = (schema as ObjectDef)._zod?.def;
  return def?.type === 'object' && def.shape && !def.catchall ? Object.keys(def.shape) : undefined;
}

/** Edit distance (Levenshtein), small strings only. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** The closest known name when it is close enough to be a typo, else undefined. */
export function didYouMean(name: string, known: readonly string[]): string | undefined {
  let best: { k: string; d: number } | undefined;
  for (const k of known) {
    const d = distance(name.toLowerCase(), k.toLowerCase());
    if (!best || d < best.d) best = { k, d };
  }
  return best && best.d <= Math.max(1, Math.floor(best.k.length / 3)) ? best.k : undefined;
}

/** Keys of `value` (a plain object) that are not in `known`. */
export function unknownKeys(value: unknown, known: readonly string[]): string[] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return [];
  return Object.keys(value).filter((k) => !known.includes(k));
}

/** `"groupz" is not a known key (did you mean "groups"?); known keys: groups, operators, …`. */
export function unknownKeyMessage(key: string, known: readonly string[], what = 'key'): string {
  const guess = didYouMean(key, known);
  return `"${key}" is not a known ${what}${guess ? ` (did you mean "${guess}"?)` : ''}; known: ${known.length ? known.join(', ') : '(none)'}.`;
}
