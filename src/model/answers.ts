/**
 * Reading a model's answer: the structured-output name a prompt is sent under, the answer as
 * the caller asked for it (`structuredAnswer`, `textAnswer`), and a structured answer without the
 * fields its schema does not have (`splitExtraFields`). A wrong answer throws CallFailed, which
 * the client records.
 */
import type { ChatCompletion } from 'openai/resources/chat/completions';
import type { z } from 'zod';
import { CallFailed } from './complete.ts';
import type { PromptRef } from './types.ts';

/** Turns a completion's content into the answer, with what the record keeps of it. */
export type Interpret<T> = (content: string | null, completion: ChatCompletion) => { response: unknown; output: T; dropped?: string[] };

/** A JSON answer that must match `schema`, less the fields it does not have. */
export function structuredAnswer<S extends z.ZodObject>(schema: S): Interpret<z.infer<S>> {
  return (content) => {
    if (content === null || content === '') throw new CallFailed({ code: 'TG_MODEL_BAD_ANSWER', message: 'The model answered nothing.' });
    let raw: unknown;
    try {
      raw = JSON.parse(content);
    } catch {
      throw new CallFailed({ code: 'TG_MODEL_BAD_ANSWER', message: 'The model’s answer was not JSON.' });
    }
    const { kept, dropped } = splitExtraFields(schema, raw);
    const parsed = schema.safeParse(kept);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const at = issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : '';
      throw new CallFailed({
        code: 'TG_MODEL_BAD_ANSWER',
        message: `The model’s answer did not match what was asked for (${at}${issue.message}).`,
        cause: parsed.error,
        response: raw,
      });
    }
    return { response: raw, output: parsed.data, dropped };
  };
}

/** Any text; none at all is a bad answer. */
export const textAnswer: Interpret<string> = (content) => {
  if (content === null) throw new CallFailed({ code: 'TG_MODEL_BAD_ANSWER', message: 'The model answered no text.' });
  return { response: content, output: content };
};

/** Structured output names allow letters, digits, `_` and `-` (64 at most); prompt names may have dots. */
export const formatName = (prompt: PromptRef) => prompt.name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64) || 'answer';

/**
 * The answer without the fields its schema does not have, and their paths (`approved`,
 * `contact.role`): a model told to pick and fill cannot add anything by answering more.
 */
export function splitExtraFields(schema: z.ZodType, value: unknown, path: string[] = []): { kept: unknown; dropped: string[] } {
  const object = objectShape(schema);
  if (object && value && typeof value === 'object' && !Array.isArray(value)) {
    const kept: Record<string, unknown> = {};
    const dropped: string[] = [];
    for (const [k, v] of Object.entries(value)) {
      const field = object[k];
      if (!field) {
        dropped.push([...path, k].join('.'));
        continue;
      }
      const inner = splitExtraFields(field, v, [...path, k]);
      kept[k] = inner.kept;
      dropped.push(...inner.dropped);
    }
    return { kept, dropped };
  }
  const element = arrayElement(schema);
  if (element && Array.isArray(value)) {
    const dropped: string[] = [];
    const kept = value.map((v, i) => {
      const inner = splitExtraFields(element, v, [...path, String(i)]);
      dropped.push(...inner.dropped);
      return inner.kept;
    });
    return { kept, dropped };
  }
  return { kept: value, dropped: [] };
}

type Def = { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType>; element?: z.ZodType; in?: z.ZodType };
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** Looks through nullable/optional/default wrappers and pipes to the schema that holds the value. */
function unwrap(s: z.ZodType): z.ZodType {
  for (let i = 0; i < 20; i++) {
    const def = defOf(s);
    if (def.innerType) s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else break;
  }
  return s;
}

const objectShape = (s: z.ZodType) => {
  const def = defOf(unwrap(s));
  return def.type === 'object' ? def.shape : undefined;
};
const arrayElement = (s: z.ZodType) => {
  const def = defOf(unwrap(s));
  return def.type === 'array' ? def.element : undefined;
};
