/**
 * Tollgate's error table (src/common/errors.ts), kept on the source: every error src/, bots/ and
 * jobs/ throw is a TollgateError with a `TG_*` code of the table (issue 20), apart from the few
 * plain Errors listed below, each with the reason it is not one; every code written in the source
 * is in the table, and every code of the table has a description and is used (or is listed here
 * as kept on purpose). And the errors whose class or properties a caller reads still carry them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { classifySlackError, slackPlatform } from '../bots/slack/platform.ts';
import { classifyTeamsError, teamsPlatform } from '../bots/teams/platform.ts';
import { PlatformNotConfigured } from '../src/chat/deliver/context.ts';
import { ERROR_CODES, isTollgateError, TollgateError } from '../src/common/errors.ts';
import { CommandSyntaxError, parseCommand } from '../src/intents/command.ts';
import { CallFailed } from '../src/model/complete.ts';

const root = path.resolve(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

const files = ['src', 'bots', 'jobs']
  .flatMap(sources)
  .map((file) => ({ file: file.split(path.sep).join('/'), text: readFileSync(path.join(root, file), 'utf8') }));

/** An error made without a TG_* code: a plain Error, one of JavaScript's own error classes, or a class of its own. */
const UNCODED = /\bnew (?:Error|TypeError|RangeError|SyntaxError|ReferenceError|URIError|AggregateError)\(|\bextends (?:Error|TypeError|RangeError)\b/;

/** The plain Errors that stay, each with why it is not a Tollgate error: `file` and a piece of its line. */
const ALLOWED: { file: string; line: string; why: string }[] = [
  { file: 'src/common/errors.ts', line: 'export class TollgateError extends Error', why: 'the table itself' },
  { file: 'src/telemetry/tracing.ts', line: 'new Error(String(e))', why: 'not thrown: a non-Error someone else threw, wrapped only to record it on a span' },
  {
    file: 'src/telemetry/tracing-spans.ts',
    line: 'new Error(run.error?.message',
    why: "not thrown: a run's recorded error rebuilt for its span, keeping its own recorded name and code",
  },
  {
    file: 'src/workflows/demo.ts',
    line: 'failed on attempt',
    why: "workflow code: the demo workflow's own retriable step failure, as any workflow would throw it",
  },
];

/** Codes of the table that no source names, kept on purpose. */
const UNUSED_ON_PURPOSE: Record<string, string> = {
  TG_RUN_CANCELLED:
    'a cancelled run records no error: the runtime stops it with its Cancelled signal (src/runtime/replay.ts), which is not an Error; the code names the outcome for people reading the table',
};

describe('the error table', () => {
  it('src/, bots/ and jobs/ make no error without a TG_* code, apart from the listed ones', () => {
    const found = files.flatMap(({ file, text }) =>
      text
        .split('\n')
        .map((line, i) => ({ file, at: i + 1, line }))
        .filter(({ line }) => UNCODED.test(line)),
    );
    const unlisted = found.filter((f) => !ALLOWED.some((a) => a.file === f.file && f.line.includes(a.line))).map((f) => `${f.file}:${f.at}: ${f.line.trim()}`);
    expect(unlisted, 'throw new TollgateError(code, message, details?, { cause }) instead, with a code of src/common/errors.ts').toEqual([]);
    // An entry whose line is gone (converted or moved) is taken off the list.
    const stale = ALLOWED.filter((a) => !found.some((f) => f.file === a.file && f.line.includes(a.line)));
    expect(stale).toEqual([]);
    for (const a of ALLOWED) expect(a.why).not.toBe('');
  });

  it('every TG_* code written in the source is in the table', () => {
    const written = new Set(files.flatMap(({ text }) => [...text.matchAll(/['"`](TG_[A-Z0-9_]+)['"`]/g)].map((m) => m[1] as string)));
    expect([...written].filter((c) => !(c in ERROR_CODES))).toEqual([]);
  });

  it('every code of the table has a description and is used, or is listed as kept on purpose', () => {
    for (const [code, description] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^TG_[A-Z0-9_]+$/);
      expect(description.trim(), code).not.toBe('');
    }
    const outsideTable = files.filter((f) => f.file !== 'src/common/errors.ts').map((f) => f.text);
    const errorsTs = files.find((f) => f.file === 'src/common/errors.ts')!.text;
    const table = errorsTs.slice(errorsTs.indexOf('export const ERROR_CODES'), errorsTs.indexOf('} as const'));
    const rest = errorsTs.replace(table, '');
    const unused = Object.keys(ERROR_CODES).filter((code) => ![...outsideTable, rest].some((t) => new RegExp(`\\b${code}\\b`).test(t)));
    expect(unused.sort()).toEqual(Object.keys(UNUSED_ON_PURPOSE).sort());
  });
});

describe('the error classes that were outside the table', () => {
  it('CommandSyntaxError is a TollgateError with TG_COMMAND_SYNTAX and its message', () => {
    let thrown: unknown;
    try {
      parseCommand('run demo name="Ada');
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(CommandSyntaxError);
    expect(isTollgateError(thrown)).toBe(true);
    expect(thrown).toMatchObject({
      code: 'TG_COMMAND_SYNTAX',
      name: 'CommandSyntaxError',
      message: 'A quote (") is not closed. Close it, e.g. reason="new laptops".',
    });
  });

  it('PlatformNotConfigured is a TollgateError with TG_CHAT_NOT_CONFIGURED and the platform', () => {
    const e = new PlatformNotConfigured('teams');
    expect(e).toBeInstanceOf(TollgateError);
    expect(e).toMatchObject({ code: 'TG_CHAT_NOT_CONFIGURED', name: 'PlatformNotConfigured', details: { platform: 'teams' } });
    expect(e.message).toBe(
      'Chat platform "teams" is not configured in this process, so its messages wait; configure it (see docs/slack.md or docs/teams.md) and they catch up.',
    );
  });

  it("CallFailed is a TollgateError with its failure's own code, message and cause", () => {
    const cause = new Error('socket hang up');
    const e = new CallFailed({ code: 'TG_MODEL_UNAVAILABLE', message: 'The model server could not be reached.', cause });
    expect(e).toBeInstanceOf(TollgateError);
    expect(e).toMatchObject({ code: 'TG_MODEL_UNAVAILABLE', message: 'The model server could not be reached.', cause });
    expect(e.failure.code).toBe('TG_MODEL_UNAVAILABLE');
    expect(new CallFailed({ code: 'TG_MODEL_TIMEOUT', message: 'late' }).cause).toBeUndefined();
  });
});

describe("a platform's DM that could not be opened", () => {
  const to = { platform: 'x', tenant: 'T1', user: 'U1' };

  it('Slack: TG_CHAT_PLATFORM_BAD_ANSWER, and the outbox still retries it', async () => {
    const client = { conversations: { open: () => Promise.resolve({ ok: true }) } } as unknown as Parameters<typeof slackPlatform>[0];
    const e: unknown = await slackPlatform(client)
      .openDm({ ...to, platform: 'slack' })
      .catch((err: unknown) => err);
    expect(e).toMatchObject({ code: 'TG_CHAT_PLATFORM_BAD_ANSWER', message: 'conversations.open with U1 returned no channel' });
    expect(classifySlackError(e)).toEqual({ kind: 'retry', reason: 'conversations.open with U1 returned no channel' });
  });

  it('Teams: TG_CHAT_PLATFORM_BAD_ANSWER with statusCode 502, which classify retries', async () => {
    const adapter = { appId: 'app', connector: () => Promise.resolve({ createConversation: () => Promise.resolve({}) }) };
    const directory = { contact: () => Promise.resolve(undefined), tenantServiceUrl: () => Promise.resolve(undefined) };
    const platform = teamsPlatform({
      adapter: adapter as unknown as Parameters<typeof teamsPlatform>[0]['adapter'],
      directory: () => directory as unknown as ReturnType<Parameters<typeof teamsPlatform>[0]['directory']>,
      defaultServiceUrl: 'https://smba.example',
    });
    const e: unknown = await platform.openDm({ ...to, platform: 'teams' }).catch((err: unknown) => err);
    expect(e).toMatchObject({ code: 'TG_CHAT_PLATFORM_BAD_ANSWER', statusCode: 502, message: 'createConversation with U1 returned no conversation id' });
    expect(classifyTeamsError(e)).toEqual({ kind: 'retry', reason: 'createConversation with U1 returned no conversation id' });
  });
});
