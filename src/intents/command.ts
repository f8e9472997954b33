/**
 * The command grammar shared by the CLI, Slack's `/tollgate` and Teams messages:
 * `run <workflow> [key=value ...]`, `status <run-id>`, `runs`, `approvals`, `retry <run-id>`,
 * `cancel <run-id>`, `workflows`, `help`. Values may be quoted: `reason="new laptops"`.
 */
import { TollgateError } from '../common/errors.ts';

export type Command =
  | { kind: 'run'; workflow: string; params: Record<string, string> }
  | { kind: 'status'; runId: string }
  | { kind: 'runs' }
  | { kind: 'approvals' }
  | { kind: 'retry'; runId: string }
  | { kind: 'cancel'; runId: string }
  | { kind: 'workflows' }
  | { kind: 'help' }
  | { kind: 'text'; text: string };

/** A command (or one of its key=value parameters) that could not be read; its message says how to write it. */
export class CommandSyntaxError extends TollgateError {
  constructor(message: string) {
    super('TG_COMMAND_SYNTAX', message);
  }
}

/** Splits on whitespace, keeping quoted runs ("…", '…', “…”) together. */
export function tokenize(text: string): string[] {
  const tokens: string[] = [];
  let cur = '';
  let quote: string | null = null;
  let has = false;
  const closing: Record<string, string> = { '"': '"', "'": "'", '\u201c': '\u201d', '\u2018': '\u2019' };
  for (const ch of text) {
    if (quote) {
      if (ch === closing[quote]) quote = null;
      else cur += ch;
    } else if (ch in closing) {
      quote = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) tokens.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (quote) throw new CommandSyntaxError(`A quote (${quote}) is not closed. Close it, e.g. reason="new laptops".`);
  if (has || cur) tokens.push(cur);
  return tokens;
}

/** Shows typed text in a message without a NUL character (messages may be stored as jsonb). */
const shown = (s: string) => s.replace(/\u0000/g, '\u2400');

/**
 * `key=value` tokens to a record. A value is kept as typed, whatever it holds: the workflow's
 * input check (src/runtime/run-input.ts) judges it and names the parameter. A key written twice is
 * refused, since which one was meant cannot be known.
 */
export function parseKeyValues(tokens: string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const t of tokens) {
    const eq = t.indexOf('=');
    if (eq <= 0) {
      throw new CommandSyntaxError(`"${shown(t)}" is not a key=value parameter. Write parameters as key=value, e.g. amount=1200.`);
    }
    const key = t.slice(0, eq);
    if (Object.hasOwn(params, key)) {
      throw new CommandSyntaxError(`Parameter "${shown(key)}" is given twice; give it once.`);
    }
    params[key] = t.slice(eq + 1);
  }
  return params;
}

/** A workflow name or run id goes into SQL as text, where PostgreSQL refuses U+0000. */
function word(token: string, what: string): string {
  if (token.includes('\u0000')) throw new CommandSyntaxError(`The ${what} "${shown(token)}" contains a NUL character (U+0000); remove it.`);
  return token;
}

const RUN_ID_COMMANDS = new Set(['status', 'retry', 'cancel']);

/** The grammar's verbs. Text that starts with anything else is free text, never a syntax error. */
export const COMMAND_VERBS: ReadonlySet<string> = new Set(['run', 'status', 'retry', 'cancel', 'runs', 'approvals', 'workflows', 'help']);

/**
 * Reads a command. Only text whose first word is a verb of the grammar is read with its quotes:
 * "what's the weather" or "raise a PO for Acme's office" is free text (`{kind: 'text'}`, for the
 * model when one is configured), not an unclosed quote. Verbs that take no argument ignore what
 * follows them, so "help what's this?" is still `help`.
 */
export function parseCommand(text: string): Command {
  const trimmed = text.trim();
  const first = trimmed.split(/\s+/, 1)[0]?.toLowerCase() ?? '';
  if (!first || first === 'help') return { kind: 'help' };
  if (!COMMAND_VERBS.has(first)) return { kind: 'text', text: trimmed };
  if (first === 'runs' || first === 'approvals' || first === 'workflows') return { kind: first };
  // The first word is a verb as it stands (it holds no quote), so it is also the first token.
  const [, ...rest] = tokenize(trimmed);
  const verb = first;
  if (verb === 'run') {
    const [workflow, ...params] = rest;
    if (!workflow) throw new CommandSyntaxError('Say which workflow to run: `run <workflow> key=value ...` (see `workflows`).');
    return { kind: 'run', workflow: word(workflow, 'workflow name'), params: parseKeyValues(params) };
  }
  if (RUN_ID_COMMANDS.has(verb)) {
    const runId = rest[0];
    if (!runId) throw new CommandSyntaxError(`Say which run: \`${verb} <run-id>\` (run ids look like run_01j…).`);
    return { kind: verb as 'status' | 'retry' | 'cancel', runId: word(runId, 'run id') };
  }
  return { kind: 'text', text: trimmed };
}
