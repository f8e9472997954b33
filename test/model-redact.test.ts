/**
 * Redaction before anything reaches a model: each kind of personal data or credential is replaced
 * by a stable placeholder (and its near misses are not), the model's answer is re-hydrated with
 * the originals, withheld values never come back, and, end to end through the client and the fake
 * server, none of the seeded values is in any request the server received.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createModelClient } from '../src/model/client.ts';
import { createRedactor, ibanValid, luhnValid } from '../src/model/redact.ts';
import type { ModelSettings } from '../src/model/types.ts';
import { startFakeOpenAI, type FakeOpenAI } from './fakes/openai/index.ts';
import { testLogger } from './helpers/log.ts';

const EMAIL = 'jane.doe@example.com';
const PHONE = '+49 30 1234 5678';
const CARD = '4111 1111 1111 1111'; // Visa's test number: Luhn-valid
const IBAN = 'DE89 3704 0044 0532 0130 00'; // the standard example: checksum holds
const API_KEY = 'sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2';
const BEARER_TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLWhlcmU';

const r = createRedactor([]);
const redacted = (text: string, withhold?: string[]) => r.redact(text, withhold).value as string;

describe('redaction', () => {
  it('checks card numbers with Luhn and IBANs with mod 97', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(ibanValid(IBAN)).toBe(true);
    expect(ibanValid('GB82 WEST 1234 5698 7654 32')).toBe(true);
    expect(ibanValid('DE89 3704 0044 0532 0130 01')).toBe(false);
  });

  it.each([
    ['an e-mail address', `write to ${EMAIL} today`, 'write to [[EMAIL_1]] today'],
    ['an international phone number', `call ${PHONE} now`, 'call [[PHONE_1]] now'],
    ['a phone number in brackets', 'call +1 (555) 123-4567 now', 'call [[PHONE_1]] now'],
    ['a North-American phone number', 'call 555-123-4567 or (555) 987 6543', 'call [[PHONE_1]] or [[PHONE_2]]'],
    ['a national phone number', 'Tel. 030 1234567, mobile 0171-2345678', 'Tel. [[PHONE_1]], mobile [[PHONE_2]]'],
    ['a card number with spaces', `card ${CARD} exp 12/27`, 'card [[CARD_1]] exp 12/27'],
    ['a card number with dashes', 'card 5555-5555-5555-4444.', 'card [[CARD_1]].'],
    ['a card number run into a following group', 'card 4111 1111 1111 1111 12', 'card [[CARD_1]] 12'],
    ['an IBAN with spaces', `pay to ${IBAN} please`, 'pay to [[IBAN_1]] please'],
    ['an IBAN followed by capitals', 'IBAN GB82WEST12345698765432 ASAP', 'IBAN [[IBAN_1]] ASAP'],
    ['an OpenAI key', `key ${API_KEY}`, 'key [[SECRET_1]]'],
    ['a Slack token', 'token xoxb-1234567890-abcdefghij', 'token [[SECRET_1]]'],
    ['a GitHub token', 'ghp_abcdefghijklmnopqrstuvwxyz0123456789', '[[SECRET_1]]'],
    ['an AWS key id', 'AKIAIOSFODNN7EXAMPLE is the id', '[[SECRET_1]] is the id'],
    ['a bearer token (the word stays)', `Authorization: Bearer ${BEARER_TOKEN}`, 'Authorization: Bearer [[SECRET_1]]'],
    ['an opaque bearer token', 'Bearer abc123def456ghi789', 'Bearer [[SECRET_1]]'],
  ])('replaces %s', (_kind, text, expected) => {
    expect(redacted(text)).toBe(expected);
  });

  it.each([
    ['a Luhn-invalid card number', 'card 4111 1111 1111 1112'],
    ['an IBAN whose checksum fails', 'pay to DE89 3704 0044 0532 0130 01'],
    ['an amount', 'a PO for 1200 EUR, about 52000 in all, 1,200,000.00 max'],
    ['dates', 'from 2024-01-15 to 15.01.2024, or 01.02.2024, or 05/06/2024'],
    ['an order number', 'order 123456789 shipped'],
    ['a version', 'deploy 1.24.3 to staging'],
    ['a bearer of news', 'the Bearer of bad news, bearer certificates'],
    ['a short phone-like number', 'room 030 12'],
    ['an at sign without a domain', 'meet @ noon, ping @jane'],
  ])('leaves %s alone', (_kind, text) => {
    expect(redacted(text)).toBe(text);
  });

  it('gives the same original the same placeholder within a call, across strings, and numbers the others', () => {
    const { value, vault } = r.redact({ from: EMAIL, cc: ['bob@example.org', EMAIL], body: `Hi, ${EMAIL} here. Card ${CARD}.`, amount: 1200 });
    expect(value).toEqual({ from: '[[EMAIL_1]]', cc: ['[[EMAIL_2]]', '[[EMAIL_1]]'], body: 'Hi, [[EMAIL_1]] here. Card [[CARD_1]].', amount: 1200 });
    expect(vault.get('[[EMAIL_1]]')).toBe(EMAIL);
    expect(vault.get('[[CARD_1]]')).toBe(CARD);
    // A new call numbers from 1 again.
    expect(r.redact('bob@example.org').value).toBe('[[EMAIL_1]]');
  });

  it('redacts values, never object keys', () => {
    expect(r.redact({ [EMAIL]: EMAIL }).value).toEqual({ [EMAIL]: '[[EMAIL_1]]' });
  });

  it('redacts a card number given as a JSON number', () => {
    expect(r.redact({ card: 4111111111111111, qty: 40 }).value).toEqual({ card: '[[CARD_1]]', qty: 40 });
  });

  it('re-hydrates every string of an answer, round-tripping the original', () => {
    const input = { email: `From: Jane <${EMAIL}>\nPhone: ${PHONE}\nIBAN: ${IBAN}`, lines: [{ card: CARD }] };
    const { value, vault } = r.redact(input);
    expect(JSON.stringify(value)).not.toContain(EMAIL);
    expect(r.rehydrate(value, vault)).toEqual(input);
    expect(r.rehydrate({ contact: { email: '[[EMAIL_1]]', note: 'call [[PHONE_1]]', unknown: '[[EMAIL_9]]' }, n: 3 }, vault)).toEqual({
      contact: { email: EMAIL, note: `call ${PHONE}`, unknown: '[[EMAIL_9]]' },
      n: 3,
    });
  });

  it('withholds values wherever they appear and never gives them back', () => {
    const { value, vault } = r.redact({ salary: 'Salary 98000 for Jane', note: 'Jane earns 98000' }, ['98000', 'Jane']);
    expect(value).toEqual({ salary: 'Salary [[WITHHELD]] for [[WITHHELD]]', note: '[[WITHHELD]] earns [[WITHHELD]]' });
    expect([...vault.values()]).not.toContain('98000');
    expect(r.rehydrate({ answer: '[[WITHHELD]] earns [[WITHHELD]]' }, vault)).toEqual({ answer: '[[WITHHELD]] earns [[WITHHELD]]' });
  });

  it('replaces configured patterns by their name, without touching placeholders already made', () => {
    const custom = createRedactor([
      { name: 'EMPLOYEE_ID', pattern: 'E\\d{6}' },
      { name: 'PROJECT', pattern: 'project [a-z]+', flags: 'i' },
      { name: 'GREEDY', pattern: '[A-Z]+_\\d' },
    ]);
    const { value, vault } = custom.redact(`E123456 on Project Falcon, ${EMAIL}`);
    expect(value).toBe('[[EMPLOYEE_ID_1]] on [[PROJECT_1]], [[EMAIL_1]]');
    expect(custom.rehydrate(value, vault)).toBe(`E123456 on Project Falcon, ${EMAIL}`);
  });
});

describe('redaction through the model client (canary)', () => {
  let fake: FakeOpenAI;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(() => fake.close());

  const settings = (): ModelSettings => ({
    model: 'canary-model',
    baseUrl: fake.url,
    apiKey: undefined,
    timeoutMs: 10_000,
    maxRetries: 0,
    prices: {},
    redact: [],
  });

  it('sends none of the seeded values, records only placeholders, and re-hydrates the answer', async () => {
    const seeded = [EMAIL, PHONE, CARD, IBAN, API_KEY, BEARER_TOKEN];
    const text =
      `Hello, I am Jane (${EMAIL}, ${PHONE}). Please charge card ${CARD} or debit ${IBAN}. ` +
      `Our key is ${API_KEY} and the webhook sends Authorization: Bearer ${BEARER_TOKEN}.`;
    // The model answers with the placeholders it was given, as a real one would.
    fake.respond((body) => {
      const sent = JSON.parse(body.messages[1]!.content as string) as { email: string };
      const placeholders = sent.email.match(/\[\[[A-Z]+_\d+\]\]/g) ?? [];
      return { json: { contact: placeholders.join('|'), summary: `Contact ${placeholders[0]} about the card.` } };
    });
    const client = createModelClient(settings(), testLogger());
    const { output, record } = await client.structured({
      prompt: { name: 'crm-extract', version: 1 },
      system: 'Extract a contact.',
      input: { email: text, from: EMAIL },
      schema: z.object({ contact: z.string(), summary: z.string() }),
    });

    expect(fake.requests).toHaveLength(1);
    for (const req of fake.requests) for (const secret of seeded) expect(req.raw).not.toContain(secret);
    // Digits alone (spaces stripped) do not leave either.
    for (const req of fake.requests) {
      expect(req.raw).not.toContain('4111111111111111');
      expect(req.raw).not.toContain('DE89370400440532013000');
    }
    // The record holds what was sent and what came back: placeholders only.
    const recorded = JSON.stringify(record);
    for (const secret of seeded) expect(recorded).not.toContain(secret);
    // The answer handed back inside the runtime holds the real values.
    expect(output.contact.split('|')).toEqual([EMAIL, PHONE, CARD, IBAN, API_KEY, BEARER_TOKEN]);
    expect(output.summary).toBe(`Contact ${EMAIL} about the card.`);
  });

  it('withholds never-send values from the request and the answer', async () => {
    fake.script({ text: 'The salary is [[WITHHELD]].' });
    const client = createModelClient(settings(), testLogger());
    const { output } = await client.text({
      prompt: { name: 'summary', version: 1 },
      system: 'Summarise.',
      input: { note: 'salary 98000' },
      withhold: ['98000'],
    });
    expect(fake.requests.at(-1)!.raw).not.toContain('98000');
    expect(output).toBe('The salary is [[WITHHELD]].');
  });
});
