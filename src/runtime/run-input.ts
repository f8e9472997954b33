/**
 * The one gate every run's input passes before its workflow's schema: `checkRunInput` is called by
 * `Runtime.startRun` (so by the CLI and every API caller) and by the chat layer's `checkInput` (so a
 * person gets field errors in a form or a reply instead of a refused run). It refuses, field by
 * field and naming the field, what the schema alone would let through or turn into a database error:
 *
 * - a NUL character (U+0000) in any text: PostgreSQL's jsonb cannot hold it, so the insert of the
 *   run would fail with `unsupported Unicode escape sequence` (a 500 for whoever asked);
 * - a parameter the workflow does not take (a typo such as `vendr=Acme` would otherwise be dropped
 *   silently by `z.object`), naming the ones it takes;
 * - a number written as anything but a plain decimal: `z.coerce.number()` is `Number()`, which takes
 *   `0x10` (16), `0b1`, `1e3`, `Infinity`, '' and whitespace (0). Text in a number field must be
 *   `-?digits[.digits]`; it is converted here, so a non-coercing `z.number()` field takes `1200`
 *   typed at a CLI or in chat as well.
 *
 * The result has the shape of zod's `safeParse`, so callers report it like any schema error.
 */
import { z } from 'zod';
import { closedKeys, didYouMean } from '../config/known-keys.ts';

/** What text a number field takes: decimal digits, an optional sign and fraction. Nothing else. */
export const DECIMAL_NUMBER = /^-?\d+(\.\d+)?$/;

interface ZodInternals {
  _zod: {
    def: {
      type: string;
      innerType?: ZodInternals;
      defaultValue?: unknown;
      entries?: Record<string, unknown>;
      shape?: Record<string, ZodInternals>;
      in?: ZodInternals;
      out?: ZodInternals;
    };
  };
  description?: string;
}

/**
 * A field schema without its wrappers (optional, nullable, default, prefault, the input side of a
 * pipe, and the output side of a preprocess): its base type, whether it may be left out, its
 * default and its description. Shared with the form descriptions (src/views/form.ts).
 */
export function unwrapField(t: unknown): { base: ZodInternals; optional: boolean; defaultValue: unknown; description: string | undefined } {
  let cur = t as ZodInternals;
  let optional = false;
  let defaultValue: unknown;
  let description = cur.description;
  for (let i = 0; i < 10; i++) {
    const def = cur._zod.def;
    if ((def.type === 'optional' || def.type === 'nullable' || def.type === 'default' || def.type === 'prefault') && def.innerType) {
      optional = true;
      if (def.type === 'default') defaultValue = def.defaultValue;
      cur = def.innerType;
      description ??= cur.description;
    } else if (def.type === 'pipe' && def.in) {
      // z.preprocess(fn, schema) is a pipe from a transform: the field's type is the schema's.
      cur = def.in._zod.def.type === 'transform' && def.out ? def.out : def.in;
      description ??= cur.description;
    } else {
      break;
    }
  }
  return { base: cur, optional, defaultValue, description };
}

function isNumberField(field: ZodInternals): boolean {
  const t = unwrapField(field).base._zod.def.type;
  return t === 'number' || t === 'int';
}

/** Paths of every string holding a NUL character, anywhere in a JSON-like value. */
function nulPaths(value: unknown, path: PropertyKey[] = [], out: PropertyKey[][] = []): PropertyKey[][] {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) out.push(path);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => nulPaths(v, [...path, i], out));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k.includes('\u0000')) out.push([...path, k]);
      nulPaths(v, [...path, k], out);
    }
  }
  return out;
}

/** Shows a value in a message without a NUL character in it (messages are stored as jsonb too). */
export function printable(s: string): string {
  return s.replace(/\u0000/g, '\u2400');
}

/**
 * Checks `input` for `schema` (see the module comment), then parses it with the schema. Issues
 * found before the schema are reported alone, each at its field, so a person fixes them first.
 */
export function checkRunInput<S extends z.ZodType>(schema: S, input: unknown): z.ZodSafeParseResult<z.output<S>> {
  const issues: z.core.$ZodIssue[] = [];
  for (const found of nulPaths(input)) {
    const path = found.map((p) => (typeof p === 'string' ? printable(p) : p));
    issues.push({
      code: 'custom',
      path,
      input: undefined,
      message: `${path.length ? 'contains' : 'The input contains'} a NUL character (U+0000), which cannot be stored; remove it.`,
    });
  }
  const shape = (schema as unknown as ZodInternals)._zod.def.shape;
  const known = closedKeys(schema);
  let value = input;
  if (shape && input && typeof input === 'object' && !Array.isArray(input)) {
    const converted: Record<string, unknown> = { ...(input as Record<string, unknown>) };
    for (const [key, v] of Object.entries(converted)) {
      const field = Object.hasOwn(shape, key) ? shape[key] : undefined;
      if (!field && known) {
        const guess = didYouMean(key, known);
        issues.push({
          code: 'custom',
          path: [printable(key)],
          input: undefined,
          message:
            `"${printable(key)}" is not a parameter of this workflow${guess ? ` (did you mean "${guess}"?)` : ''}; ` +
            (known.length ? `it takes ${known.join(', ')}.` : 'it takes none.'),
        });
      } else if (field && typeof v === 'string' && isNumberField(field) && !v.includes('\u0000')) {
        const text = v.trim();
        if (DECIMAL_NUMBER.test(text)) converted[key] = Number(text);
        else issues.push({ code: 'custom', path: [key], input: undefined, message: `must be a decimal number such as 1200 or 99.50, not "${v}".` });
      }
    }
    value = converted;
  }
  if (issues.length > 0) return { success: false, error: new z.ZodError(issues) } as z.ZodSafeParseResult<z.output<S>>;
  return schema.safeParse(value);
}
