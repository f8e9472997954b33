/**
 * A button's value with the revision of the view it was drawn from (stale buttons,
 * src/chat/intake/stale.ts): `<id>@<revision>`, e.g. `run_01jb…@42`. Ids never hold `@`, so a
 * value without one is a button drawn before versions existed: the id alone, handled as before.
 * Platforms whose buttons carry structured data (Teams' `Action.Execute`) put the revision in
 * its own field instead (`v`).
 */

const MARK = '@';

/** The value of a button naming `id`, drawn at `revision` (the id alone when the view has none). */
export function buttonValue(id: string, revision: number | undefined): string {
  return revision === undefined ? id : `${id}${MARK}${revision}`;
}

/** A button's value read back: the id, and the revision when the button carried one. */
export function readButtonValue(value: string | undefined | null): { id: string; revision?: number } {
  const s = value ?? '';
  const at = s.lastIndexOf(MARK);
  if (at < 0) return { id: s };
  const revision = readRevision(s.slice(at + 1));
  return revision === undefined ? { id: s } : { id: s.slice(0, at), revision };
}

/** A revision as a platform's data carried it (a number or its decimal text); undefined when absent or not one. */
export function readRevision(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'string' && /^\d{1,15}$/.test(v)) return Number(v);
  return undefined;
}
