/**
 * A dry replay: the workflow function run against a run's journal with an input (the run's own,
 * or an edited one) where no step executes and nothing is written. It answers what Edit and retry
 * and Resolve by hand need to know before anything changes:
 *
 * - which completed step would receive something different with the edited input (the first
 *   one, `firstChanged`), compared with what the journal recorded it receiving: a tool call's
 *   validated input, an approval's parameters (by their hash), a model step's prompt and input;
 * - which completed steps have an undo (`steps[].undo`), and the step the run stopped at
 *   (`stoppedAt`), with the options its call gave (a by-hand output's schema, the tool).
 *
 * The rule for a step the journal records no input for (a plain `ctx.step`, whose body may read
 * anything): it is taken as changed when any key of the run's input changed, because its body
 * may read the input and nothing recorded says it does not (docs/operator-control.md). Recorded
 * values (`ctx.now()`, `ctx.randomUUID()`, a budget decision) and sleeps do not depend on the
 * input and are kept. A call whose name differs from the journal's at its index (the edit took
 * the workflow down another branch) counts as changed there.
 */
import { paramsHash } from '../approvals/hash.ts';
import { TollgateError } from '../common/errors.ts';
import type { ApprovalOptions, ApprovalResult } from '../approvals/types.ts';
import type { Logger } from '../common/log.ts';
import type { StepRow } from '../db/queries/runs.ts';
import { modelStepName, type ModelStepCall } from '../model/steps.ts';
import { prepareToolCall } from '../tools/invoke.ts';
import type { ToolRegistry } from '../tools/registry.ts';
import type { StepOptions, ToolCallOptions, WorkflowContext, WorkflowDefinition } from './workflow.ts';

const DONE = new Set(['succeeded', 'compensated', 'compensating', 'compensation_failed']);

export interface ProbedStep {
  idx: number;
  name: string;
  kind: string;
  /** The step has an undo (a compensation) that would run if it were undone. */
  undo: boolean;
}

export interface ProbeResult {
  /** Completed steps passed, in order (recorded values aside). */
  steps: ProbedStep[];
  /** The first completed step that would receive something different; undefined when none. */
  firstChanged: ProbedStep | undefined;
  /** The first unfinished step reached (the failed one), with its call's options. */
  stoppedAt: { idx: number; name: string; kind: string; tool?: string; options: StepOptions | ToolCallOptions } | undefined;
}

/** Ends the dry replay (an error, so the workflow's own `catch` sees an ordinary failure and nothing else). */
class Stop extends TollgateError {
  constructor() {
    super('TG_INTERNAL', 'The dry replay of an edit stopped here; nothing ran.');
  }
}

/**
 * Runs `def` against `journal` with `input`. `inputChanged`: whether the run's input differs from
 * what the journal's steps ran with (the rule for steps without a recorded input).
 */
export async function probeRun(
  def: WorkflowDefinition,
  runId: string,
  journal: StepRow[],
  input: unknown,
  inputChanged: boolean,
  tools: ToolRegistry,
  log: Logger,
): Promise<ProbeResult> {
  const rows = new Map(journal.map((s) => [s.idx, s]));
  const names = new Map<string, number>();
  const result: ProbeResult = { steps: [], firstChanged: undefined, stoppedAt: undefined };
  let counter = 0;

  /** Claims the next index; stops at an unfinished step or a branch the journal did not take. */
  const claim = (name: string, kind: string, extra: Omit<NonNullable<ProbeResult['stoppedAt']>, 'idx' | 'name' | 'kind'>): StepRow => {
    if (result.stoppedAt || (result.firstChanged && kind !== 'value')) throw new Stop();
    const seen = (names.get(name) ?? 0) + 1;
    names.set(name, seen);
    const unique = seen === 1 ? name : `${name}:${seen}`;
    const idx = counter++;
    const row = rows.get(idx);
    if (row && row.name !== unique) {
      result.firstChanged = { idx, name: row.name, kind: row.kind, undo: false };
      throw new Stop();
    }
    if (!row || !DONE.has(row.status) || (row.kind !== kind && kind !== 'value')) {
      result.stoppedAt = { idx, name: unique, kind: row?.kind ?? kind, ...extra };
      throw new Stop();
    }
    return row;
  };
  const pass = (row: StepRow, changed: boolean, undo: boolean): unknown => {
    const step = { idx: row.idx, name: row.name, kind: row.kind, undo };
    if (changed) {
      result.firstChanged = step;
      throw new Stop();
    }
    result.steps.push(step);
    return row.output;
  };
  const recordedHash = (row: StepRow, key: string): string | undefined => {
    const v = (row.input as Record<string, unknown> | null)?.[key];
    return typeof v === 'string' ? v : undefined;
  };

  const model = (call: ModelStepCall): unknown => {
    const name = modelStepName(call);
    if (def.budget) {
      const decision = claim(`budget-check:${name}`, 'value', { options: {} });
      if ((decision.output as { gate?: boolean } | null)?.gate) pass(claim(`budget:${name}`, 'approval', { options: {} }), false, false);
    }
    const row = claim(name, 'model', { options: { retry: call.options.retry } });
    const sent = { kind: call.kind, prompt: call.options.prompt, input: call.input };
    return pass(row, paramsHash(sent) !== paramsHash(row.input), false);
  };

  const ctx: WorkflowContext<unknown> = {
    runId,
    workflow: def.name,
    version: def.version,
    input,
    log,
    step: <T>(name: string, _fn: unknown, options: StepOptions = {}) =>
      Promise.resolve().then(() => pass(claim(name, 'step', { options }), inputChanged, !!options.compensate) as T),
    sleep: (name: string) =>
      Promise.resolve().then(() => {
        pass(claim(name, 'sleep', { options: {} }), false, false);
      }),
    approval: (name: string, options: ApprovalOptions) =>
      Promise.resolve().then(() => {
        const row = claim(name, 'approval', { options: {} });
        return pass(row, recordedHash(row, 'paramsHash') !== paramsHash(options.params), false) as ApprovalResult;
      }),
    tool: <T>(name: string, toolInput: unknown, options: ToolCallOptions = {}) =>
      Promise.resolve().then(() => {
        const row = claim(name, 'tool', { tool: name, options });
        let changed: boolean;
        let undo = false;
        try {
          const call = prepareToolCall(tools, def, runId, name, toolInput);
          changed = paramsHash(call.input) !== paramsHash(row.input);
          undo = !!options.compensate && !!call.tool.compensate;
        } catch {
          changed = true; // the edited input is not one the tool takes: it must run (and fail) again
        }
        return pass(row, changed, undo) as T;
      }),
    now: () => new Date(claim('now', 'value', { options: {} }).output as string),
    randomUUID: () => claim('uuid', 'value', { options: {} }).output as string,
    model: {
      extract: (schema, modelInput, options) => Promise.resolve().then(() => model({ kind: 'extract', schema, input: modelInput, options }) as never),
      classify: (labels, modelInput, options) => Promise.resolve().then(() => model({ kind: 'classify', labels, input: modelInput, options }) as never),
      generate: (prompt, modelInput, options) => Promise.resolve().then(() => model({ kind: 'generate', prompt, input: modelInput, options }) as string),
    },
  };
  try {
    await def.run(ctx);
  } catch {
    // Stopped (or the workflow threw on the recorded outputs): what was found so far is the answer.
  }
  return result;
}
