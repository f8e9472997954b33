/**
 * A run's whole timeline, for people who investigate it (the web console): the same `RunView`
 * chat shows, with every approval (voided and rule-approved ones too, which the run message leaves
 * out), the model calls recorded as `model.called` events, the tool calls (steps of kind 'tool')
 * and the run's events.
 *
 * Pure like the other views: built from stored rows only, never the clock.
 */
import { listRunApprovals } from '../approvals/store.ts';
import type { ApprovalRecord } from '../approvals/types.ts';
import type { EventRow, RunRow, StepRow } from '../db/queries/runs.ts';
import type { Queryable } from '../db/queryable.ts';
import { loadSteps, readRun } from '../db/queries/runs.ts';
import { listRunEvents, readRunChangeMarks } from '../db/queries/run-views.ts';
import { toApprovalView } from './approval-view.ts';
import { buildRunView, type RunView, type StepView } from './run-view.ts';

export interface ModelCallView {
  at: Date;
  stepIdx: number | null;
  model: string | null;
  prompt: { name: string; version: string } | null;
  inputTokens: number | null;
  outputTokens: number | null;
  costUsd: number | null;
  latencyMs: number | null;
  /** False when retention purged the event's payload: only that a call happened is left. */
  recorded: boolean;
}

export interface EventView {
  id: string;
  type: string;
  at: Date;
  stepIdx: number | null;
  /** The principal string of who caused it, when a person did. */
  actor: string | null;
  /** How it came in ('slack', 'cli', 'console' …), when recorded. */
  via: string | null;
}

export interface TimelineView {
  run: RunView;
  toolCalls: StepView[];
  modelCalls: ModelCallView[];
  /** Sums over `modelCalls` (calls without a figure count as 0). */
  modelTotals: { calls: number; inputTokens: number; outputTokens: number; costUsd: number };
  events: EventView[];
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function modelCall(e: EventRow): ModelCallView {
  const p = (e.payload ?? null) as Record<string, unknown> | null;
  const prompt = p?.prompt as { name?: unknown; version?: unknown } | undefined;
  // A prompt's version is recorded as a number or a string; anything else is shown as JSON.
  const versionText = (v: unknown): string =>
    v === undefined || v === null ? '' : typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  return {
    at: e.created_at,
    stepIdx: e.step_idx,
    model: typeof p?.model === 'string' ? p.model : null,
    prompt: prompt && typeof prompt.name === 'string' ? { name: prompt.name, version: versionText(prompt.version) } : null,
    inputTokens: num(p?.inputTokens),
    outputTokens: num(p?.outputTokens),
    costUsd: num(p?.costUsd),
    latencyMs: num(p?.latencyMs),
    recorded: p !== null,
  };
}

function actorString(actor: unknown): string | null {
  if (!actor || typeof actor !== 'object') return typeof actor === 'string' ? actor : null;
  const a = actor as { platform?: unknown; tenant?: unknown; user?: unknown };
  return typeof a.platform === 'string' && typeof a.tenant === 'string' && typeof a.user === 'string' ? `${a.platform}:${a.tenant}:${a.user}` : null;
}

export function buildTimelineView(run: RunRow, steps: StepRow[], approvals: ApprovalRecord[], events: EventRow[]): TimelineView {
  const view = buildRunView(run, steps, approvals.map(toApprovalView));
  const modelCalls = events.filter((e) => e.type === 'model.called').map(modelCall);
  return {
    run: view,
    toolCalls: view.steps.filter((s) => s.kind === 'tool'),
    modelCalls,
    modelTotals: {
      calls: modelCalls.length,
      inputTokens: modelCalls.reduce((n, c) => n + (c.inputTokens ?? 0), 0),
      outputTokens: modelCalls.reduce((n, c) => n + (c.outputTokens ?? 0), 0),
      costUsd: modelCalls.reduce((n, c) => n + (c.costUsd ?? 0), 0),
    },
    events: events.map((e) => ({
      id: String(e.id),
      type: e.type,
      at: e.created_at,
      stepIdx: e.step_idx,
      actor: actorString(e.actor),
      via: typeof e.payload?.via === 'string' ? e.payload.via : null,
    })),
  };
}

/** Reads a run, its steps, approvals and events; undefined when there is no such run. */
export async function loadTimelineView(q: Queryable, runId: string): Promise<TimelineView | undefined> {
  const run = await readRun(q, runId);
  if (!run) return undefined;
  const steps = await loadSteps(q, runId);
  const events = await listRunEvents(q, runId);
  return buildTimelineView(run, steps, await listRunApprovals(q, runId), events);
}

/**
 * What changes whenever anything of the run's timeline does: every change of a run appends an
 * event (invariant 1), so the newest event id, with the run's `updated_at`, is a cheap way to
 * tell that a timeline must be drawn again (one index lookup, `events_run_idx`).
 */
export async function timelineVersion(q: Queryable, runId: string): Promise<string | undefined> {
  const row = await readRunChangeMarks(q, runId);
  return row ? `${row.updated_at.toISOString()}|${row.last_event ?? ''}` : undefined;
}
