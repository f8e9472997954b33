/**
 * `modelSchemaFor`: the schema a model answers with, derived from a workflow's input schema, is
 * accepted by OpenAI's strict structured outputs (`zodResponseFormat` would throw otherwise) and
 * keeps what the model needs to read (types, enums, descriptions); its answer then goes through
 * the workflow's own schema.
 */
import { zodResponseFormat } from 'openai/helpers/zod';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { modelSchemaFor, withoutNulls } from '../src/model/schema.ts';
import { EMPTY_PROJECT_CONFIG } from '../src/config/project-config.ts';
import { demoInput } from '../src/workflows/demo.ts';
import { deployInput } from '../src/workflows/deploy.ts';
import { purchaseOrderInput } from '../src/workflows/purchase-order.ts';
import { builtinWorkflows } from '../src/workflows/index.ts';

type JsonSchema = {
  type?: unknown;
  properties: Record<string, { type?: unknown; enum?: unknown; description?: string; anyOf?: unknown }>;
  required: string[];
  additionalProperties: boolean;
};

const jsonSchemaOf = (schema: z.ZodObject, name = 'answer') => zodResponseFormat(schema, name).json_schema.schema as unknown as JsonSchema;

describe('modelSchemaFor', () => {
  it('the raw workflow schemas are refused by strict structured outputs (why the model needs its own)', () => {
    // purchase-order upper-cases its currency with a transform; demo has optional fields.
    expect(() => zodResponseFormat(purchaseOrderInput, 'po')).toThrow();
    expect(() => zodResponseFormat(z.object({ tags: z.record(z.string(), z.string()) }), 'r')).toThrow();
  });

  it.each(builtinWorkflows(EMPTY_PROJECT_CONFIG).map((w) => [w.name, w] as const))('derives a strict schema for the built-in workflow %s', (_name, w) => {
    const json = jsonSchemaOf(modelSchemaFor(w.input as z.ZodObject), w.name);
    const fields = Object.keys((w.input as z.ZodObject).shape);
    expect(Object.keys(json.properties).sort()).toEqual([...fields].sort());
    // Strict mode: every property required, nothing else allowed.
    expect([...json.required].sort()).toEqual([...fields].sort());
    expect(json.additionalProperties).toBe(false);
  });

  it('keeps types and descriptions and makes every field nullable (null = not given)', () => {
    const json = jsonSchemaOf(modelSchemaFor(purchaseOrderInput));
    const types = (p: { type?: unknown; anyOf?: unknown }) => JSON.stringify(p.type ?? p.anyOf);
    expect(json.properties.vendor!.description).toBe('Who is paid');
    expect(types(json.properties.vendor!)).toMatch(/string/);
    expect(types(json.properties.vendor!)).toMatch(/null/);
    // z.coerce.number() stays a number; the transform on currency is unwrapped to its string.
    expect(types(json.properties.amount!)).toMatch(/number/);
    expect(json.properties.amount!.description).toBe('Amount, in currency');
    expect(types(json.properties.currency!)).toMatch(/string/);
    expect(json.properties.currency!.description).toBe('ISO currency code, e.g. EUR');

    const model = modelSchemaFor(purchaseOrderInput);
    expect(model.safeParse({ vendor: null, amount: null, currency: null, reason: null, vendorContact: null }).success).toBe(true);
    expect(model.safeParse({ vendor: 'Acme', amount: '12', currency: 'eur', reason: 'x' }).success).toBe(false);
  });

  it('unwraps defaults and optionals, keeps enums and integers (demo)', () => {
    const model = modelSchemaFor(demoInput);
    const json = jsonSchemaOf(model);
    expect(JSON.stringify(json.properties.failAt)).toMatch(/"prepare"/);
    expect(json.properties.failAt!.description).toBe('A step that fails');
    expect(JSON.stringify(json.properties.sleepMs)).toMatch(/integer/);
    expect(json.properties.name!.description).toBe('Who to greet');
    expect(model.safeParse({ name: null, sleepMs: 1.5, failAt: null, failTimes: null }).success).toBe(false);
    expect(model.safeParse({ name: null, sleepMs: 10, failAt: 'nope', failTimes: null }).success).toBe(false);
  });

  it('turns what strict mode refuses into string fields, and recurses into objects and arrays', () => {
    const input = z.object({
      tags: z.record(z.string(), z.string()).describe('Labels'),
      when: z.date(),
      either: z.union([z.string(), z.number()]),
      lines: z.array(z.object({ sku: z.string(), qty: z.number().int().optional() })).default([]),
      urgent: z.boolean().optional(),
      kind: z.literal(['a', 'b']),
      normalised: z.preprocess((v) => String(v).trim(), z.string()),
    });
    const model = modelSchemaFor(input);
    const json = jsonSchemaOf(model);
    for (const k of ['tags', 'when', 'either', 'normalised']) expect(JSON.stringify(json.properties[k])).toMatch(/string/);
    expect(json.properties.tags!.description).toBe('Labels');
    expect(
      model.safeParse({ tags: '{"a":"b"}', when: '2024-01-01', either: '1', lines: [{ sku: 'X', qty: null }], urgent: true, kind: 'a', normalised: ' x ' })
        .success,
    ).toBe(true);
    expect(model.safeParse({ tags: null, when: null, either: null, lines: [{ sku: 'X', qty: 1.5 }], urgent: null, kind: null, normalised: null }).success).toBe(
      false,
    );
  });

  it('a model answer goes through the workflow schema once its nulls are dropped (defaults apply)', () => {
    const answer = modelSchemaFor(deployInput).parse({ service: ' api ', version: '1.2', environment: null });
    expect(withoutNulls(answer)).toEqual({ service: ' api ', version: '1.2' });
    expect(deployInput.safeParse(withoutNulls(answer)).success).toBe(false); // environment is missing: ask for it
    expect(demoInput.parse(withoutNulls(modelSchemaFor(demoInput).parse({ name: null, sleepMs: null, failAt: null, failTimes: null })))).toMatchObject({
      name: 'world',
      sleepMs: 500,
    });
  });
});
