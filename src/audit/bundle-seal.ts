/**
 * Field seals of an evidence bundle: the exporter computes, under the audit key, one HMAC per
 * field of the bundle, so that whoever holds the key can later name the exact field that changed,
 * including fields no chained event records (an approval's summary, a step's output, the run's
 * input). Without the key nobody can compute them; with it, anyone can (the key holder is the
 * root of trust, as for the chain itself).
 *
 * What one seal covers: HMAC(K, format ‖ run id ‖ exportedAt ‖ path ‖ canonical JSON of the value).
 * The run id and export time bind a seal to its bundle (no splicing a field and its seal from
 * another export), the path binds it to its place. Objects of the bundle's own structure get a
 * seal of their key list (so an added or removed field shows) and one per field; the data a run
 * carries (inputs, outputs, parameters, model requests) is sealed whole and one level down, so a
 * changed parameter is named (`approvals[0].params.amount`) without a seal per nested value.
 * Chained events are sealed whole: their links already cover them field by field.
 */
import { canonicalJson } from '../approvals/hash.ts';
import type { AuditKey } from '../db/pool-key.ts';
import { EVIDENCE_FORMAT, type EvidenceBundle } from './bundle-format.ts';

/** Paths (indices written `[*]`) whose values are data: sealed whole, and each of their entries. */
const DATA = new Set([
  'run.input',
  'run.output',
  'run.error',
  'run.origin',
  'steps[*].input',
  'steps[*].output',
  'steps[*].error',
  'toolCalls[*].input',
  'toolCalls[*].output',
  'approvals[*].params',
  'approvals[*].toolInput',
  'approvals[*].policy',
  'approvals[*].onTimeout',
  'modelCalls[*].prompt',
  'modelCalls[*].request',
  'modelCalls[*].response',
  'modelCalls[*].error',
]);
/** Sealed whole only: a chained event's own link covers each of its fields. */
const WHOLE = new Set(['chain.events[*]', 'chain.checkpoint.event', 'chain.retention.event']);

const IDENT = /^[A-Za-z_$][\w$]*$/;

function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (IDENT.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Every sealed path of a bundle with the text its seal covers (the bundle's `seals` excluded). */
export function sealedFields(bundle: unknown): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (value: unknown, path: string, pattern: string) => {
    if (WHOLE.has(pattern)) {
      out.set(path, canonicalJson(value));
      return;
    }
    if (DATA.has(pattern)) {
      out.set(path, canonicalJson(value));
      if (Array.isArray(value)) value.forEach((v, i) => out.set(child(path, i), canonicalJson(v)));
      else if (isObject(value)) for (const [k, v] of Object.entries(value)) if (v !== undefined) out.set(child(path, k), canonicalJson(v));
      return;
    }
    if (Array.isArray(value)) {
      out.set(path, canonicalJson({ length: value.length }));
      value.forEach((v, i) => walk(v, child(path, i), `${pattern}[*]`));
    } else if (isObject(value)) {
      const keys = Object.keys(value).filter((k) => value[k] !== undefined && !(path === '' && k === 'seals'));
      out.set(path, canonicalJson({ fields: keys.sort() }));
      for (const k of keys) walk(value[k], child(path, k), child(pattern, k));
    } else {
      out.set(path, canonicalJson(value));
    }
  };
  walk(bundle, '', '');
  return out;
}

function identity(bundle: unknown): { runId: string; exportedAt: string } {
  const b = (isObject(bundle) ? bundle : {}) as { run?: { id?: unknown }; exportedAt?: unknown };
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- the seal's input must stay byte-identical for every bundle, odd ones included: seals already issued are checked against it
  return { runId: String(b.run?.id ?? ''), exportedAt: String(b.exportedAt ?? '') };
}

function seal(key: AuditKey, id: { runId: string; exportedAt: string }, path: string, text: string): string {
  return key.hmac(`${EVIDENCE_FORMAT}\0${id.runId}\0${id.exportedAt}\0${path}\0${text}`).toString('hex');
}

/** The bundle's seals under `key` (the exporter calls this last, over the finished bundle). */
export function sealBundle(bundle: Omit<EvidenceBundle, 'seals'>, key: AuditKey): NonNullable<EvidenceBundle['seals']> {
  const id = identity(bundle);
  const fields: Record<string, string> = {};
  for (const [path, text] of sealedFields(bundle)) fields[path] = seal(key, id, path, text);
  return { keyFingerprint: key.fingerprint.toString('hex'), fields };
}

export interface SealFailure {
  /** The field's path; '' is the bundle's top level. */
  field: string;
  kind: 'changed' | 'added' | 'removed';
}

/**
 * The fields whose seals do not verify, most specific first: a changed parameter reports
 * `approvals[0].params.amount`, not also `approvals[0].params` and `approvals[0]`.
 */
export function checkSeals(bundle: unknown, key: AuditKey): { checked: number; failures: SealFailure[] } {
  const stored = ((bundle as { seals?: { fields?: unknown } }).seals?.fields ?? {}) as Record<string, unknown>;
  const id = identity(bundle);
  const fields = sealedFields(bundle);
  const failures: SealFailure[] = [];
  for (const [path, text] of fields) {
    const want = stored[path];
    if (typeof want !== 'string') failures.push({ field: path, kind: 'added' });
    else if (want !== seal(key, id, path, text)) failures.push({ field: path, kind: 'changed' });
  }
  for (const path of Object.keys(stored)) if (!fields.has(path)) failures.push({ field: path, kind: 'removed' });
  // Every seal covers the run id and export time: when they changed, nothing else can be told apart.
  const identityChanged = failures.filter((f) => f.field === 'run.id' || f.field === 'exportedAt');
  if (identityChanged.length > 0) return { checked: fields.size, failures: identityChanged };
  const within = (inner: string, outer: string) => inner !== outer && (outer === '' || inner.startsWith(`${outer}.`) || inner.startsWith(`${outer}[`));
  // A removed (or added) record is named once, at its top, not field by field; a change is named
  // where it is most specific.
  const whole = failures.filter((f) => f.kind === 'changed' || !failures.some((g) => g.kind === f.kind && within(f.field, g.field)));
  const specific = whole.filter((f) => !whole.some((g) => within(g.field, f.field)));
  return { checked: fields.size, failures: specific };
}
