/**
 * The command grammar (src/intents/command.ts) shared by `/tollgate`, mentions, DMs and Teams
 * messages. Free text is not a command and never a syntax error: only text that starts with a
 * verb of the grammar is read with its quotes (issue 8: "what's the weather" used to be answered
 * "A quote (') is not closed").
 */
import { describe, expect, it } from 'vitest';
import { CommandSyntaxError, parseCommand } from '../src/intents/command.ts';
import { parseChatCommand } from '../src/chat/intake.ts';

describe('parseCommand', () => {
  it('free text with an apostrophe is free text, not an unclosed quote', () => {
    expect(parseCommand("what's the weather")).toEqual({ kind: 'text', text: "what's the weather" });
    expect(parseChatCommand("  what's up? ")).toEqual({ kind: 'text', text: "what's up?" });
    expect(parseCommand('raise a PO for 40 laptops from Acme\u2019s shop, "urgent')).toEqual({
      kind: 'text',
      text: 'raise a PO for 40 laptops from Acme\u2019s shop, "urgent',
    });
  });

  it('verbs that take nothing ignore what follows, quotes included', () => {
    expect(parseCommand("help what's this?").kind).toBe('help');
    expect(parseCommand("runs I've started").kind).toBe('runs');
    expect(parseCommand("Approvals that aren't done").kind).toBe('approvals');
    expect(parseCommand('').kind).toBe('help');
  });

  it('commands are still read with their quotes, and a real unclosed quote in a command is still explained', () => {
    expect(parseCommand('run purchase-order vendor=Acme reason="new laptops" amount=1200')).toEqual({
      kind: 'run',
      workflow: 'purchase-order',
      params: { vendor: 'Acme', reason: 'new laptops', amount: '1200' },
    });
    expect(parseCommand("RUN demo name='Ada Lovelace'")).toEqual({ kind: 'run', workflow: 'demo', params: { name: 'Ada Lovelace' } });
    expect(parseCommand('status run_01')).toEqual({ kind: 'status', runId: 'run_01' });
    expect(() => parseCommand('run demo name="Ada')).toThrow(CommandSyntaxError);
    expect(parseChatCommand('run demo name="Ada')).toMatchObject({ kind: 'invalid', message: expect.stringContaining('quote') });
  });
});
