/**
 * The schema a model answers with, derived from a workflow's input schema.
 *
 * OpenAI's structured outputs (strict mode, `zodResponseFormat`) accept a subset of JSON Schema:
 * every property required, no `.optional()` without `.nullable()`, no `z.record`, no transforms.
 * A workflow's own schema uses all of those (trims, `z.coerce`, defaults, upper-casing), so the
 * model gets a schema of its own:
 *
 * - every field is present and `.nullable()`: null means "not given" (`withoutNulls` then drops
 *   it, so the workflow's own defaults and "missing parameter" questions apply);
 * - wrappers (optional, default, catch, readonly, coerce) and transforms/pipes are unwrapped to
 *   the type the workflow accepts as input; checks (min, regex, trim …) are left out: the answer is
 *   validated with the workflow's own schema afterwards, which is the one that decides;
 * - numbers stay numbers (integers integers), booleans booleans, string enums and literals enums,
 *   arrays arrays, objects objects (recursively, fields nullable);
 * - everything strict mode refuses or we cannot describe (records, maps, unions, dates, any …)
 *   becomes a string field: the model writes it as text, and the workflow's schema judges it.
 *
 * `.describe()` texts are kept (the outermost one wins): they are what the model reads.
 */
import { z } from 'zod';

type AnySchema = z.ZodType;

/**
 * `def` of any zod 4 schema, read loosely: we only branch on `type` and read the member that type
 * has (each member below is there only for the types named beside it).
 */
interface LooseDef {
  readonly type: string;
  /** optional, nullable, default and the other WRAPPERS */
  readonly innerType: AnySchema;
  /** pipe */
  readonly in: AnySchema;
  readonly out: AnySchema;
  /** enum */
  readonly entries: Record<string, unknown>;
  /** literal */
  readonly values: unknown[];
  /** array */
  readonly element: AnySchema;
}

function defOf(s: AnySchema): LooseDef {
  return (s as unknown as { _zod: { def: LooseDef } })._zod.def;
}

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'catch', 'readonly', 'nonoptional', 'success']);

/** The first `.describe()` text on the way from the outside in. */
function descriptionOf(s: AnySchema): string | undefined {
  let cur: AnySchema | undefined = s;
  for (let i = 0; cur && i < 20; i++) {
    if (cur.description) return cur.description;
    const def = defOf(cur);
    cur = WRAPPERS.has(def.type) ? def.innerType : def.type === 'pipe' ? (defOf(def.in).type === 'transform' ? def.out : def.in) : undefined;
  }
  return undefined;
}

/** The input type a field is written in, without wrappers, transforms or checks. */
function baseType(s: AnySchema): AnySchema {
  const def = defOf(s);
  if (WRAPPERS.has(def.type)) return baseType(def.innerType);
  // `.transform()` is a pipe from the input type into a transform; `z.preprocess` is a pipe from a
  // transform into the type it produces: either way, the side that is not the transform.
  if (def.type === 'pipe') return baseType(defOf(def.in).type === 'transform' ? def.out : def.in);
  switch (def.type) {
    case 'string':
      return z.string();
    case 'number':
      return (s as z.ZodNumber).format === 'safeint' || (s as z.ZodNumber).format === 'int32' ? z.int() : z.number();
    case 'boolean':
      return z.boolean();
    case 'enum': {
      const values = Object.values(def.entries);
      return values.length > 0 && values.every((v) => typeof v === 'string') ? z.enum(values as [string, ...string[]]) : z.string();
    }
    case 'literal': {
      const values = def.values;
      return values.length > 0 && values.every((v) => typeof v === 'string') ? z.enum(values as [string, ...string[]]) : z.string();
    }
    case 'array':
      return z.array(baseType(def.element));
    case 'object':
      return modelSchemaFor(s as z.ZodObject);
    default:
      // record, map, set, union, intersection, tuple, date, bigint, any, unknown, transform …
      return z.string();
  }
}

/** The strict-mode-compatible schema for a workflow's input schema (see the module comment). */
export function modelSchemaFor(schema: z.ZodObject): z.ZodObject {
  const shape: Record<string, AnySchema> = {};
  for (const [key, field] of Object.entries<AnySchema>(schema.shape)) {
    const description = descriptionOf(field);
    const base = baseType(field).nullable();
    shape[key] = description ? base.describe(description) : base;
  }
  return z.object(shape);
}

/**
 * A model's answer with its "not given" fields (null) removed, at every depth of objects, so the
 * workflow's own schema sees them as missing (its defaults apply, or a person is asked).
 */
export function withoutNulls<T>(value: T): T {
  if (Array.isArray(value)) return value.map(withoutNulls) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = withoutNulls(v);
    return out as T;
  }
  return value;
}
