/**
 * The command grammar shared by the CLI, Slack's `/tollgate` and Teams messages:
 * `run <workflow> [key=value ...]`, `status <run-id>`, `runs`, `approvals`, `retry <run-id>`,
 * `cancel <run-id>`, `workflows`, `help`. Values may be quoted: `reason="new laptops"`.
 * Delegation (src/approvals/delegation.ts): `delegate <principal> until <YYYY-MM-DD>`,
 * `delegate off`, and `delegate` alone (the delegations one gave or received). A chat adapter
 * writes a mention of a person as their principal before the text comes here.
 */
import { TollgateError, type ErrorCode } from '../common/errors.ts';
import { formatPrincipal, parsePrincipal } from '../common/principals.ts';

export type Command =
  | { kind: 'run'; workflow: string; params: Record<string, string> }
  | { kind: 'status'; runId: string }
  | { kind: 'runs' }
  | { kind: 'approvals' }
  | { kind: 'retry'; runId: string }
  | { kind: 'cancel'; runId: string }
  | { kind: 'workflows' }
  | { kind: 'help' }
  /**
   * Delegation: to `to` (a principal) until `endsAt` (ISO, exclusive: the end of the day given,
   * UTC); `off`: end one's delegations; `list`: those one gave or received.
   */
  | { kind: 'delegate'; action: 'to'; to: string; until: string; endsAt: string }
  | { kind: 'delegate'; action: 'off' }
  | { kind: 'delegate'; action: 'list' }
  | { kind: 'text'; text: string };

/** A command (or one of its key=value parameters) that could not be read; its message says how to write it. */
export class CommandSyntaxError extends TollgateError {
  constructor(message: string, code: ErrorCode = 'TG_COMMAND_SYNTAX') {
    super(code, message);
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
export const COMMAND_VERBS: ReadonlySet<string> = new Set(['run', 'status', 'retry', 'cancel', 'runs', 'approvals', 'workflows', 'help', 'delegate']);

const DELEGATE_FORM = '`delegate @someone until YYYY-MM-DD` (e.g. until 2026-12-24), `delegate off`, or `delegate` alone to list';

const delegationError = (message: string) => new CommandSyntaxError(`${message} (TG_DELEGATION_INVALID)`, 'TG_DELEGATION_INVALID');

/**
 * The end of a delegation as written: a date `YYYY-MM-DD` (the delegation lasts to the end of
 * that day, UTC) or an ISO time with its zone (`2026-12-24T17:00Z`). Returns the end, exclusive.
 * Whether it has passed is for src/approvals/delegation.ts (this grammar reads no clock).
 */
export function parseUntil(text: string): Date {
  const t = text.trim();
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(t);
  if (day) {
    const [y, m, d] = [Number(day[1]), Number(day[2]), Number(day[3])];
    const at = new Date(Date.UTC(y, m - 1, d));
    if (at.getUTCFullYear() === y && at.getUTCMonth() === m - 1 && at.getUTCDate() === d) return new Date(at.getTime() + 86_400_000);
  } else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(t) && !Number.isNaN(Date.parse(t))) {
    return new Date(t);
  }
  throw delegationError(
    `"${shown(t)}" is not a date: write the last day of the delegation as YYYY-MM-DD, e.g. until 2026-12-24 (it lasts to the end of that day, UTC).`,
  );
}

function parseDelegate(rest: string[]): Command {
  const [first, ...more] = rest;
  if (first === undefined || first.toLowerCase() === 'list') return { kind: 'delegate', action: 'list' };
  if (first.toLowerCase() === 'off') return { kind: 'delegate', action: 'off' };
  let to: string;
  try {
    to = formatPrincipal(parsePrincipal(first));
  } catch {
    throw delegationError(
      `"${shown(first)}" is not someone Tollgate can delegate to: mention them (@name), or write their principal (slack:<team>:<user-id>, teams:<tenant-id>:<aad-object-id>).`,
    );
  }
  const [word2, date, ...extra] = more;
  if (word2?.toLowerCase() !== 'until' || date === undefined || extra.length > 0) throw delegationError(`Write ${DELEGATE_FORM}.`);
  return { kind: 'delegate', action: 'to', to, until: date, endsAt: parseUntil(date).toISOString() };
}

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
  if (verb === 'delegate') return parseDelegate(rest);
  if (RUN_ID_COMMANDS.has(verb)) {
    const runId = rest[0];
    if (!runId) throw new CommandSyntaxError(`Say which run: \`${verb} <run-id>\` (run ids look like run_01j…).`);
    return { kind: verb as 'status' | 'retry' | 'cancel', runId: word(runId, 'run id') };
  }
  return { kind: 'text', text: trimmed };
}
