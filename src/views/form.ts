/**
 * A form described from a workflow's zod input schema: the single source of truth for the Slack
 * modal, the Teams form and the model's structured output. Only `z.object` schemas of scalar
 * fields (string, number, enum, boolean; optional or with a default; coerced or not) become
 * fields; anything else is left to the `key=value` form and reported by validation.
 *
 * Values travel as strings (what a person types); validation is the schema's own `safeParse`,
 * so the form can never accept what `startRun` would refuse.
 */
import type { z } from 'zod';
import { checkRunInput, unwrapField as unwrap } from '../runtime/run-input.ts';

export interface FormField {
  name: string;
  type: 'string' | 'number' | 'enum' | 'boolean';
  description: string | undefined;
  /** May be left empty (optional or defaulted). */
  optional: boolean;
  /** The schema's default, as text. */
  defaultValue: string | undefined;
  /** For enums and booleans. */
  options: string[] | undefined;
}

type ZodLike = { _zod: { def: { type: string; entries?: Record<string, unknown>; shape?: Record<string, unknown> } } };

/**
 * A default as the form shows it, as String() shows it: a scalar's text, an array's items joined
 * with commas (`.default([])` shows nothing); an object default shows as JSON.
 */
function defaultText(value: unknown): string {
  if (Array.isArray(value)) return value.map((v) => (v === null || v === undefined ? '' : defaultText(v))).join(',');
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

/** The fields of an object schema; empty when the schema is not a `z.object`. */
export function describeForm(schema: z.ZodType): FormField[] {
  const def = (schema as unknown as ZodLike)._zod.def;
  if (def.type !== 'object' || !def.shape) return [];
  const fields: FormField[] = [];
  for (const [name, fieldSchema] of Object.entries(def.shape)) {
    const { base, optional, defaultValue, description } = unwrap(fieldSchema);
    const baseDef = base._zod.def;
    const text = defaultValue === undefined ? undefined : defaultText(defaultValue);
    if (baseDef.type === 'enum' && baseDef.entries) {
      fields.push({ name, type: 'enum', description, optional, defaultValue: text, options: Object.values(baseDef.entries).map(String) });
    } else if (baseDef.type === 'boolean') {
      fields.push({ name, type: 'boolean', description, optional, defaultValue: text, options: ['true', 'false'] });
    } else if (baseDef.type === 'number' || baseDef.type === 'int' || baseDef.type === 'bigint') {
      fields.push({ name, type: 'number', description, optional, defaultValue: text, options: undefined });
    } else {
      fields.push({ name, type: 'string', description, optional, defaultValue: text, options: undefined });
    }
  }
  return fields;
}

/**
 * `describeForm`, kept per schema for `checkFormValues`, which every `run` command and form
 * submission calls (a schema never changes once a workflow is defined). Read only here; callers
 * of `describeForm` get an array of their own.
 */
const formFields = new WeakMap<z.ZodType, FormField[]>();
function fieldsOf(schema: z.ZodType): FormField[] {
  let fields = formFields.get(schema);
  if (!fields) {
    fields = describeForm(schema);
    formFields.set(schema, fields);
  }
  return fields;
}

/** A one-line description of a workflow's inputs, e.g. `vendor, amount (number), currency=EUR|USD`. */
export function describeInputs(schema: z.ZodType): string {
  const fields = describeForm(schema);
  if (fields.length === 0) return '(no inputs)';
  return fields
    .map((f) => {
      let s = f.name;
      if (f.type === 'enum') s += `=${(f.options ?? []).join('|')}`;
      else if (f.type !== 'string') s += ` (${f.type})`;
      if (f.defaultValue !== undefined) s += ` [default ${f.defaultValue}]`;
      else if (f.optional) s += ' [optional]';
      return s;
    })
    .join(', ');
}

/** Field errors keyed by field name (the first issue of each field); form-level issues under ''. */
export function fieldErrors(error: z.ZodError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const issue of error.issues) {
    const key = issue.path.length ? String(issue.path[0]) : '';
    out[key] ??= issue.message;
  }
  return out;
}

/**
 * Turns typed text into what the schema's field types take: `true`/`false` for booleans. Numbers
 * stay text: `checkRunInput` (src/runtime/run-input.ts) is the one place that reads them, decimal
 * only. Empty values are dropped, so defaults apply and required fields report "required".
 * Unknown keys are kept for `checkRunInput` to refuse by name.
 */
export function fromFormValues(fields: FormField[], values: Record<string, string | undefined>): Record<string, unknown> {
  const byName = new Map(fields.map((f) => [f.name, f]));
  const out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(values)) {
    if (raw === undefined || raw.trim() === '') continue;
    const f = byName.get(name);
    const text = raw.trim();
    if (f?.type === 'boolean' && (text === 'true' || text === 'false')) out[name] = text === 'true';
    else out[name] = f ? text : raw;
  }
  return out;
}

/**
 * Text values (a form's, a command's, or parameters a model understood) checked as `startRun`
 * would check them: typed by the form's fields, then the schema's own parse. The one path from
 * text to a run's input, so a form, a `run` command and a confirmed proposal accept the same.
 */
export function checkFormValues(
  schema: z.ZodType,
  values: Record<string, string | undefined>,
): { ok: true; input: unknown } | { ok: false; error: z.ZodError } {
  const parsed = checkRunInput(schema, fromFormValues(fieldsOf(schema), values));
  return parsed.success ? { ok: true, input: parsed.data } : { ok: false, error: parsed.error };
}
