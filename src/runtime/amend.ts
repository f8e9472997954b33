/**
 * Edit and retry, and Resolve by hand (docs/operator-control.md): what the runtime checks and
 * records when a person puts a failed run right. `Runtime` (runtime.ts) authorises and calls these
 * inside its transaction, with the run locked; the executor carries the result out (an edit's
 * undo in rewind.ts, the rest by an ordinary replay).
 *
 * - Edit and retry: the run's input, with the edited values, is checked by the workflow's input
 *   schema; a dry replay (probe.ts) finds the first completed step that would receive something
 *   different. None: the run resumes at the failed step with every completed step kept. One: that
 *   step and the completed steps after it are undone (rewind.ts) and run again.
 * - Resolve by hand: the held step (the one whose failure kept the run's undo, because the
 *   workflow lets a person resolve it) is marked done with the given output, checked by its
 *   output schema (a tool's, or the step's `resolvable.output`); the run continues after it.
 *   Skip and compensate: undo and end. Give up: end failed, nothing undone.
 *
 * Nothing here decides who may; `Runtime` does, before calling.
 */
import { z } from 'zod';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type { HeldStep, PendingRewind } from '../db/queries/rerun.ts';
import type { RunRow, StepRow } from '../db/queries/runs.ts';
import type { ToolRegistry } from '../tools/registry.ts';
import { probeRun } from './probe.ts';
import { whyNotRetryable } from './retryable.ts';
import { checkRunInput, printable, unwrapField } from './run-input.ts';
import type { StepOptions, WorkflowDefinition } from './workflow.ts';
import { describeIssues } from './zod-issues.ts';

/** What an edit will do, said before it is confirmed and recorded with it. */
export interface EditPlan {
  runId: string;
  /** The input the run continues with (checked by the workflow's schema). */
  input: unknown;
  /** The keys the edit changes, with their old and new values. */
  changed: Record<string, { from: unknown; to: unknown }>;
  /** The step the run failed at, which runs again. */
  resumeAt: string | null;
  /** Completed steps that run again (from the first whose input changes), in order. */
  rerun: string[];
  /** Of those, the ones whose undo runs first, in the order it runs (newest first). */
  undo: string[];
  /** Approval steps among `rerun`: voided and asked again when their parameters changed. */
  approvals: string[];
  /** The journal index the rewind starts from; null when every completed step is kept. */
  fromIdx: number | null;
  /** The sentence that says it, for a form, a card, a page or the CLI. */
  summary: string;
}

const quote = (names: string[]) => names.map((n) => `"${n}"`).join(', ');

/**
 * The run's input with `values` (text, as typed in a form or after `--set`) put in: an empty
 * value removes the key (its default applies); text in a number field is read as a decimal,
 * `true`/`false` in a boolean field as a boolean. Keys the workflow does not take are refused by
 * `checkRunInput`, by name.
 */
export function editedInput(def: WorkflowDefinition, current: unknown, values: Record<string, string | undefined>): z.ZodSafeParseResult<unknown> {
  const merged: Record<string, unknown> = { ...(current && typeof current === 'object' ? (current as Record<string, unknown>) : {}) };
  const shape = (def.input as unknown as { shape?: Record<string, unknown> }).shape ?? {};
  for (const [key, raw] of Object.entries(values)) {
    if (raw === undefined || raw.trim() === '') {
      delete merged[key];
      continue;
    }
    const field = Object.hasOwn(shape, key) ? unwrapField(shape[key]).base._zod.def.type : undefined;
    const text = raw.trim();
    merged[key] = field === 'boolean' && (text === 'true' || text === 'false') ? text === 'true' : field ? text : raw;
  }
  return checkRunInput(def.input, merged);
}

/** The refusal of an edited input, with its field errors (chat shows them under the form's fields). */
export function invalidEdit(def: WorkflowDefinition, error: z.ZodError): TollgateError {
  const fieldErrors: Record<string, string> = {};
  for (const issue of error.issues) fieldErrors[issue.path.length ? String(issue.path[0]) : ''] ??= issue.message;
  return new TollgateError('TG_INPUT_INVALID', `Invalid input for ${def.name}: ${describeIssues(error)}`, {
    workflow: def.name,
    issues: error.issues.map((i) => ({ path: i.path.map(String), message: i.message })),
    fieldErrors,
  });
}

function changedKeys(before: unknown, after: unknown): EditPlan['changed'] {
  const a = (before ?? {}) as Record<string, unknown>;
  const b = (after ?? {}) as Record<string, unknown>;
  const out: EditPlan['changed'] = {};
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) out[printable(key)] = { from: a[key] ?? null, to: b[key] ?? null };
  }
  return out;
}

/** Plans the edit of `run` to `input` against its journal (probe.ts); writes nothing. */
export async function planEdit(def: WorkflowDefinition, run: RunRow, steps: StepRow[], input: unknown, tools: ToolRegistry, log: Logger): Promise<EditPlan> {
  const changed = changedKeys(run.input, input);
  const [before, after] = await Promise.all([
    probeRun(def, run.id, steps, run.input, false, tools, log),
    probeRun(def, run.id, steps, input, Object.keys(changed).length > 0, tools, log),
  ]);
  const failed = steps.find((s) => s.status === 'failed');
  const fromIdx = after.firstChanged?.idx ?? null;
  const again = fromIdx === null ? [] : before.steps.filter((s) => s.idx >= fromIdx);
  const visible = again.filter((s) => s.kind !== 'now' && s.kind !== 'uuid' && s.kind !== 'budget' && s.kind !== 'value');
  const plan: EditPlan = {
    runId: run.id,
    input,
    changed,
    resumeAt: failed?.name ?? before.stoppedAt?.name ?? null,
    rerun: visible.map((s) => s.name),
    undo: again
      .filter((s) => s.undo)
      .reverse()
      .map((s) => s.name),
    approvals: visible.filter((s) => s.kind === 'approval').map((s) => s.name),
    fromIdx,
    summary: '',
  };
  plan.summary = describePlan(plan);
  return plan;
}

export function describePlan(p: EditPlan): string {
  const keys = Object.keys(p.changed);
  const parts = [keys.length ? `Changes ${quote(keys)}.` : 'Changes nothing in the input.'];
  if (p.rerun.length === 0) parts.push('Every completed step is kept (what it received is unchanged).');
  else {
    parts.push(
      `${p.rerun.length === 1 ? 'Step' : 'Steps'} ${quote(p.rerun)} will run again` + (p.undo.length ? `; ${quote(p.undo)} will be undone first.` : '.'),
    );
    if (p.approvals.length) parts.push(`${quote(p.approvals)} will be asked again if its parameters changed.`);
  }
  if (p.resumeAt) parts.push(`The run then resumes at "${p.resumeAt}".`);
  return parts.join(' ');
}

/** The rewind an edit leaves for the executor; null when every completed step is kept. */
export function rewindOf(plan: EditPlan, previousInput: unknown): PendingRewind | null {
  return plan.fromIdx === null ? null : { fromIdx: plan.fromIdx, previousInput };
}

// ----- Resolve by hand ---------------------------------------------------------------------------

export type Resolution = { action: 'by-hand'; output: unknown; reason: string } | { action: 'skip'; reason: string } | { action: 'give-up'; reason: string };

const ACTION_NAMES = { 'by-hand': 'Resolve by hand', skip: 'Skip and compensate', 'give-up': 'Give up' } as const;
const ALLOWED_KEY = { 'by-hand': 'byHand', skip: 'skip', 'give-up': 'giveUp' } as const;

/** The held step, if the run is failed and its step allows `action`; a sentence-bearing refusal otherwise. */
export function heldFor(run: RunRow, action: Resolution['action']): HeldStep {
  const held = run.held as HeldStep | null | undefined;
  const name = ACTION_NAMES[action];
  const givenUp = (run.error as { givenUp?: unknown } | null)?.givenUp ? whyNotRetryable(run) : undefined;
  if (givenUp) throw new TollgateError('TG_RUN_STATE', givenUp.replace('cannot be retried', `cannot take "${name}"`), { runId: run.id, action });
  if (run.status !== 'failed' || !held) {
    throw new TollgateError(
      'TG_RUN_STATE',
      `Run ${run.id} is ${run.status === 'failed' ? 'failed at a step its workflow does not let a person resolve' : run.status}; ${name} applies only to a run that failed at a step that allows it.`,
      { runId: run.id, status: run.status, action },
    );
  }
  if (!held[ALLOWED_KEY[action]]) {
    const allowed = (Object.keys(ALLOWED_KEY) as Resolution['action'][]).filter((a) => held[ALLOWED_KEY[a]]).map((a) => ACTION_NAMES[a]);
    throw new TollgateError(
      'TG_RUN_STATE',
      `Step "${held.name}" of run ${run.id} does not allow "${name}"; its workflow allows ${allowed.length ? allowed.join(', ') : 'none of these'} (and Retry).`,
      { runId: run.id, step: held.name, action },
    );
  }
  return held;
}

/** Checks a by-hand output with the step's output schema, found by a dry replay to the held step. */
export async function checkByHandOutput(
  def: WorkflowDefinition,
  run: RunRow,
  steps: StepRow[],
  held: HeldStep,
  output: unknown,
  tools: ToolRegistry,
  log: Logger,
): Promise<unknown> {
  const probed = await probeRun(def, run.id, steps, run.input, false, tools, log);
  const at = probed.stoppedAt?.idx === held.idx ? probed.stoppedAt : undefined;
  const schema: z.ZodType | undefined = at?.tool ? tools.get(at.tool).output : (at?.options as StepOptions | undefined)?.resolvable?.output;
  if (!schema) return output;
  const parsed = schema.safeParse(output);
  if (parsed.success) return parsed.data;
  throw new TollgateError('TG_INPUT_INVALID', `The output given for step "${held.name}" does not match its output schema: ${describeIssues(parsed.error)}`, {
    runId: run.id,
    step: held.name,
    fieldErrors: { output: describeIssues(parsed.error) },
  });
}

/** The reason a person gives: required, so the audit always says why. */
export function checkReason(reason: string, action: Resolution['action']): string {
  const text = reason.trim();
  if (text === '') {
    throw new TollgateError('TG_INPUT_INVALID', `${ACTION_NAMES[action]} needs a reason, recorded in the audit trail; give one.`, {
      fieldErrors: { reason: 'Say why; it is recorded with your name.' },
    });
  }
  return text.slice(0, 2000);
}
