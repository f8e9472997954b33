/**
 * Human-readable views of runs for the CLI: a table of runs and a run's timeline (each step's
 * status, attempts, duration and error).
 */
import type { RunDetail } from '../runtime/runtime.ts';
import type { RunRow, StepRow } from '../db/queries/runs.ts';
import type { SerializedError } from '../common/errors.ts';
import { formatUsd } from '../model/steps.ts';
import type { ModelCallRecord } from '../model/types.ts';
import { cliPerson, type Names } from './approvals-format.ts';
import { pad, table } from './table.ts';

export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${Math.round((ms % 60_000) / 1000)}s`;
}

function span(from: Date | null, to: Date | null): number | null {
  return from && to ? to.getTime() - from.getTime() : null;
}

/** The requester's principal, written `platform:tenant:user` (none for a run nobody requested). */
export function requesterKeys(requester: unknown): string[] {
  const r = requester as { platform?: string; tenant?: string; user?: string } | null;
  return r?.platform && r.tenant && r.user ? [`${r.platform}:${r.tenant}:${r.user}`] : [];
}

/** The requester by name with their platform when the directory knows them (`names`), else their principal. */
function requesterOf(run: RunRow, names: Names = new Map()): string {
  const [key] = requesterKeys(run.requester);
  return key ? cliPerson(key, names.get(key)) : '-';
}

export function formatRunList(runs: RunRow[], names: Names = new Map()): string {
  if (runs.length === 0) return 'No runs yet. Start one with `tollgate run demo`.';
  const rows = runs.map((r) => [r.id, `${r.workflow}@v${r.workflow_version}`, r.status, r.created_at.toISOString(), requesterOf(r, names)]);
  const head = ['RUN', 'WORKFLOW', 'STATUS', 'CREATED', 'REQUESTER'];
  return table(head, rows);
}

function errorLine(e: unknown): string {
  const err = e as SerializedError | null;
  if (!err) return '';
  return err.code ? `${err.code}: ${err.message}` : err.message;
}

const MARK: Record<string, string> = {
  succeeded: 'ok',
  failed: 'FAILED',
  running: '...',
  retrying: 'retry',
  sleeping: 'zzz',
  compensating: 'undo...',
  compensated: 'undone',
  compensation_failed: 'UNDO FAILED',
};

export function formatTimeline(detail: RunDetail, names: Names = new Map()): string {
  const { run, steps } = detail;
  const out: string[] = [];
  out.push(`Run ${run.id}  ${run.workflow}@v${run.workflow_version}  ${run.status.toUpperCase()}`);
  out.push(`  requested by ${requesterOf(run, names)} at ${run.created_at.toISOString()}`);
  const total = span(run.started_at ?? run.created_at, run.finished_at);
  if (run.finished_at) out.push(`  finished ${run.finished_at.toISOString()} (${formatDuration(total)})`);
  if (run.status === 'waiting') out.push(`  waiting for ${run.wait_reason ?? 'an event'}${run.wake_at ? ` until ${run.wake_at.toISOString()}` : ''}`);
  if (run.cancel_requested_at) out.push(`  cancellation requested ${run.cancel_requested_at.toISOString()}`);
  if (run.status === 'dead_letter') out.push(...deadLetterLines(detail));
  else if (run.recovery_attempts > 0) out.push(`  recovered after ${run.recovery_attempts} interruption(s)`);
  out.push(`  input ${JSON.stringify(run.input)}`);
  out.push('');
  const visible = steps.filter((s) => s.kind !== 'now' && s.kind !== 'uuid');
  if (visible.length === 0) out.push('  (no steps yet)');
  const nameWidth = Math.max(4, ...visible.map((s) => s.name.length));
  for (const s of visible) out.push(formatStep(s, nameWidth));
  // A dead-lettered run's error is the dead-letter notice said above; what it may have carried
  // before (a compensating run's failure) is its cause.
  const error =
    run.status === 'dead_letter' && (run.error as SerializedError | null)?.code === 'TG_RUN_DEAD_LETTER' ? (run.error as SerializedError).cause : run.error;
  if (error) {
    out.push('');
    out.push(`  error: ${errorLine(error)}`);
  }
  if (run.status === 'succeeded' && run.output !== null && run.output !== undefined) {
    out.push('');
    out.push(`  output ${JSON.stringify(run.output)}`);
  }
  return out.join('\n');
}

/**
 * Why a run is in dead letter and how to take it out, from its newest `run.dead_lettered` event
 * (written with the status change) or, failing that, the run row.
 */
function deadLetterLines(detail: RunDetail): string[] {
  const { run } = detail;
  const event = detail.events.findLast((e) => e.type === 'run.dead_lettered');
  const p = (event?.payload ?? {}) as { recoveries?: number; limit?: number; steps?: string; lastExecutor?: string };
  const recoveries = p.recoveries ?? run.recovery_attempts;
  const limit = p.limit === undefined ? '' : ` (limit ${p.limit}, set by TOLLGATE_MAX_RECOVERIES)`;
  const where = p.steps ? ` in step ${p.steps}` : '';
  const who = p.lastExecutor ? `; last executor ${p.lastExecutor}` : '';
  return [
    `  dead-lettered after ${recoveries} ${recoveries === 1 ? 'recovery' : 'recoveries'}${limit}: its advance was interrupted again${where} ` +
      `(the worker died or lost the run each time it resumed it${who}).`,
    `  It is not advanced or swept again until a person acts. Find the cause, then take it out with \`tollgate runs retry ${run.id}\` ` +
      `(resumes where it stopped, recoveries counted afresh) or \`tollgate runs cancel ${run.id}\` (stops it and undoes its completed steps).`,
  ];
}

function formatStep(s: StepRow, nameWidth: number): string {
  const mark = MARK[s.status] ?? s.status;
  const dur = s.kind === 'sleep' ? `until ${s.wake_at?.toISOString() ?? '?'}` : formatDuration(span(s.started_at, s.finished_at));
  const attempts = s.kind === 'step' ? `${s.attempts} attempt${s.attempts === 1 ? '' : 's'}` : s.kind;
  let line = `  #${pad(String(s.idx), 3)} ${pad(s.name, nameWidth)}  ${pad(mark, 11)} ${pad(attempts, 11)} ${dur}`;
  if (s.error && s.status !== 'succeeded') line += `\n        ${errorLine(s.error)}`;
  return line;
}

/** One model call as `runs show` prints it: its record, with the step it belongs to (model steps record `stepIdx`, `step`, `attempt`). */
export type ModelCallLine = ModelCallRecord & { stepIdx?: unknown; step?: unknown; attempt?: unknown };

const tokens = (n: number | null) => (n === null ? '?' : String(n));

/** A USD cost with enough digits for a fraction of a cent; `no price` when the model has none configured. */
export function formatCost(usd: number | null): string {
  return usd === null ? 'no price' : formatUsd(usd);
}

/** A short line per model call: which prompt, for which step, tokens, cost, latency, and what went wrong. */
export function formatModelCalls(calls: readonly ModelCallLine[]): string {
  if (calls.length === 0) return '';
  const out = ['', '', 'Model calls'];
  for (const c of calls) {
    const where =
      typeof c.stepIdx === 'number'
        ? `  #${c.stepIdx}${typeof c.step === 'string' ? ` ${c.step}` : ''}${typeof c.attempt === 'number' ? ` attempt ${c.attempt}` : ''}`
        : '';
    out.push(
      `  model ${c.model} ${c.prompt.name} v${c.prompt.version}${where}  ${tokens(c.inputTokens)} in / ${tokens(c.outputTokens)} out tokens  ${formatCost(c.costUsd)}  ${formatDuration(c.latencyMs)}`,
    );
    if (c.dropped.length > 0) out.push(`    dropped from the answer: ${c.dropped.join(', ')}`);
    if (c.error) out.push(`    ${c.error.code}: ${c.error.message}`);
  }
  return out.join('\n');
}

/**
 * The CLI's `--json` text. Byte strings (the audit chain's event hashes and payload digests) come
 * out as hex, as the evidence bundle writes them, rather than as Node's
 * `{"type":"Buffer","data":[…]}`: Buffer's own toJSON runs before a replacer sees the value, so
 * the replacer reads the original from its holder.
 */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(
    value,
    function (this: Record<string, unknown>, key: string, v: unknown) {
      const raw = this[key];
      return Buffer.isBuffer(raw) ? raw.toString('hex') : v;
    },
    indent,
  );
}
