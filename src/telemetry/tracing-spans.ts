/**
 * The spans of a run, one helper per thing that is traced, each called from one line where it
 * happens. Every helper begins with the cheap check (`tracingLive()`), and with tracing off calls
 * straight through: no span, no query, no header.
 *
 * The tree of a run (one trace, parented on the run's stored context; see src/telemetry/tracing.ts):
 *
 *   run <workflow>                         exported when the run first ends
 *   ├─ step <name>                         one per attempt (a retried step has several)
 *   │  └─ tool <name>                      a step of kind 'tool'
 *   │     └─ GET                           http.request's client span; `traceparent` goes out with it
 *   ├─ approval <name>                     opened → resolved, made when the gate reads the decision
 *   ├─ chat.deliver <kind>                 each copy brought up to date (platform, outcome)
 *   └─ chat <model>                        model calls (gen_ai.*), under the step that makes them
 *
 * What goes into a span: ids, names, counts, outcomes and error codes. Never a run's input or
 * output, a person's identity, or a URL's query values: traces leave the database, and so the reach
 * of retention.
 */
import type { Span } from '@opentelemetry/api';
import type { ApprovalResult } from '../approvals/types.ts';
import type { ModelCallRecord } from '../model/types.ts';
import { markTraceEnded, readTraceContext, setTraceContextIfMissing, type RunRow } from '../db/queries/runs.ts';
import type { Queryable } from '../db/queryable.ts';
import { endRootSpan, inSpan, newRootContext, recordError, runContext, tracingLive } from './tracing.ts';

type TracedRun = Pick<RunRow, 'id' | 'workflow'> & { trace_context?: unknown };

// ----- a run's trace context ---------------------------------------------------------------------

/**
 * The trace context to store with a new run (its root span's ids), as the JSON text of a jsonb
 * parameter; null when tracing is off. The runtime hands it to `insertQueuedRun` (src/db/queries/runs.ts).
 */
export function newRunTraceContext(workflow: string): string | null {
  const stored = newRootContext(`run ${workflow}`);
  return stored ? JSON.stringify(stored) : null;
}

/**
 * Gives a run created while tracing was off (or by a process without it) its trace context, on
 * its first advance with tracing on, so that its later spans still share one trace.
 */
export async function ensureRunTraceContext(q: Queryable, run: TracedRun): Promise<void> {
  if (!tracingLive() || run.trace_context) return;
  const fresh = newRunTraceContext(run.workflow);
  run.trace_context = await setTraceContextIfMissing(q, run.id, fresh).catch(() => null);
}

/**
 * Exports the run's root span when an advance ended it, with the run's creation as its start, its
 * status and error. Once per run: the `ended` mark is set in the same statement, so a run that is
 * retried and ends again does not export a second root. Returns `outcome` (a telemetry failure
 * never fails an advance).
 */
export async function traceRunEnd<O extends string>(q: Queryable, runId: string, outcome: O): Promise<O> {
  if (!tracingLive() || outcome !== 'finished') return outcome;
  const run = await markTraceEnded(q, runId).catch(() => undefined);
  if (!run) return outcome;
  endRootSpan(run.trace_context, `run ${run.workflow}`, run.created_at, run.finished_at ?? new Date(), (span) => {
    span.setAttributes({
      'tollgate.run.id': runId,
      'tollgate.workflow.name': run.workflow,
      'tollgate.workflow.version': run.workflow_version,
      'tollgate.run.status': run.status,
      'tollgate.run.recoveries': run.recovery_attempts,
    });
    if (run.status === 'failed' || run.status === 'compensation_failed' || run.status === 'compensated') {
      // Not a Tollgate error: the run's recorded error rebuilt for the span, with its own recorded name and code.
      recordError(span, Object.assign(new Error(run.error?.message ?? `run ${run.status}`), { name: run.error?.name ?? 'Error', code: run.error?.code }));
    }
  });
  return outcome;
}

// ----- steps, tools, HTTP ------------------------------------------------------------------------

/** One attempt of a step's body, as a span `step <name>` under the run. */
export function traceStepAttempt<T>(run: TracedRun, step: { name: string; idx: number; attempt: number; kind: string }, fn: () => Promise<T>): Promise<T> {
  if (!tracingLive()) return fn();
  return inSpan(
    `step ${step.name}`,
    {
      attributes: {
        'tollgate.run.id': run.id,
        'tollgate.workflow.name': run.workflow,
        'tollgate.step.name': step.name,
        'tollgate.step.index': step.idx,
        'tollgate.step.attempt': step.attempt,
        'tollgate.step.kind': step.kind,
      },
    },
    runContext(run.trace_context),
    fn,
  );
}

/** A tool's handler, as a span `tool <name>` under its step's attempt. */
export function traceToolCall<T>(tool: { name: string; version: number }, effect: string, runId: string, fn: () => Promise<T>): Promise<T> {
  if (!tracingLive()) return fn();
  return inSpan(
    `tool ${tool.name}`,
    { attributes: { 'tollgate.run.id': runId, 'tollgate.tool.name': tool.name, 'tollgate.tool.version': tool.version, 'tollgate.tool.effect': effect } },
    undefined,
    fn,
  );
}

/** The URL as `url.full` may show it: no credentials, and query parameters' values redacted. */
function safeUrl(url: URL): string {
  const shown = new URL(url.href);
  shown.username = '';
  shown.password = '';
  for (const key of new Set(shown.searchParams.keys())) shown.searchParams.set(key, 'REDACTED');
  return shown.href;
}

/**
 * An outgoing HTTP request as a client span (HTTP semantic conventions), with its `traceparent`
 * (and `tracestate`) added to `headers` before `send` runs, so the called service continues the
 * run's trace. 4xx and 5xx answers mark the span failed, as the conventions say for clients.
 */
export function traceHttpRequest<R extends { status: number }>(method: string, url: URL, headers: Record<string, string>, send: () => Promise<R>): Promise<R> {
  const t = tracingLive();
  if (!t) return send();
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return inSpan(
    method,
    {
      kind: t.api.SpanKind.CLIENT,
      attributes: {
        'http.request.method': method,
        'url.full': safeUrl(url),
        'url.scheme': url.protocol.replace(/:$/, ''),
        'server.address': url.hostname.replace(/^\[(.*)\]$/, '$1'),
        'server.port': port,
      },
    },
    undefined,
    () => {
      t.api.propagation.inject(t.api.context.active(), headers);
      return send();
    },
    (span, res) => {
      span.setAttribute('http.response.status_code', res.status);
      if (res.status >= 400) {
        span.setStatus({ code: t.api.SpanStatusCode.ERROR });
        span.setAttribute('error.type', String(res.status));
      }
    },
  );
}

// ----- approvals ---------------------------------------------------------------------------------

/**
 * An approval's wait, from the moment it was opened to its resolution, made when the gate reads
 * the decision (the wait may have lasted days, across any number of processes). The outcome is an
 * attribute; each decision is an event at its time (its kind and channel, not who made it).
 */
export function traceApprovalWait(
  run: TracedRun,
  approval: { id: string; step_idx: number; name: string; created_at: Date; resolved_at: Date | null; escalations: number },
  result: ApprovalResult,
): void {
  const t = tracingLive();
  if (!t) return;
  const span = t.tracer.startSpan(
    `approval ${approval.name}`,
    {
      startTime: approval.created_at,
      attributes: {
        'tollgate.run.id': run.id,
        'tollgate.workflow.name': run.workflow,
        'tollgate.step.name': approval.name,
        'tollgate.step.index': approval.step_idx,
        'tollgate.step.kind': 'approval',
        'tollgate.approval.id': approval.id,
        'tollgate.approval.decision': result.status,
        'tollgate.approval.approvals': result.decisions.filter((d) => d.decision === 'approve').length,
        'tollgate.approval.rejections': result.decisions.filter((d) => d.decision === 'reject').length,
        'tollgate.approval.escalations': approval.escalations,
        ...(result.auto ? { 'tollgate.approval.auto': true } : {}),
      },
    },
    runContext(run.trace_context) ?? t.api.ROOT_CONTEXT,
  );
  for (const d of result.decisions) {
    span.addEvent(
      'approval.decided',
      { 'tollgate.approval.decision': d.decision, ...(d.via ? { 'tollgate.approval.via': d.via } : {}) },
      new Date(d.decidedAt),
    );
  }
  span.end(approval.resolved_at ?? new Date());
}

// ----- chat delivery -----------------------------------------------------------------------------

/**
 * One outbox row brought up to date (`bring` in src/chat/deliver.ts), as a span in its run's
 * trace. A failure is recorded with the platform's classification of it.
 */
export async function traceChatDelivery<O extends string>(
  q: Queryable,
  row: { id: string; kind: string; platform: string; run_id: string | null },
  deliver: () => Promise<O>,
  classify: (e: unknown) => { kind: string; code?: string },
): Promise<O> {
  const t = tracingLive();
  if (!t) return deliver();
  let parent;
  if (row.run_id) {
    parent = runContext(await readTraceContext(q, row.run_id).catch(() => undefined));
  }
  const span = t.tracer.startSpan(
    `chat.deliver ${row.kind}`,
    {
      kind: t.api.SpanKind.CLIENT,
      attributes: {
        'tollgate.chat.platform': row.platform,
        'tollgate.chat.message.id': row.id,
        'tollgate.chat.message.kind': row.kind,
        ...(row.run_id ? { 'tollgate.run.id': row.run_id } : {}),
      },
    },
    parent ?? t.api.ROOT_CONTEXT,
  );
  try {
    const outcome = await deliver();
    span.setAttribute('tollgate.chat.outcome', outcome);
    return outcome;
  } catch (e) {
    recordError(span, e);
    try {
      const failure = classify(e);
      span.setAttribute('tollgate.chat.outcome', failure.kind === 'permanent' ? 'given_up' : 'deferred');
      if (failure.code) span.setAttribute('error.type', failure.code);
    } catch {
      // classify is the platform's; a throw there must not hide the delivery's own error
    }
    throw e;
  } finally {
    span.end();
  }
}

// ----- model calls -------------------------------------------------------------------------------

export interface ModelCallSpanRequest {
  /** `gen_ai.operation.name`: 'chat' for chat completions. */
  operation?: string;
  /** `gen_ai.request.model`. */
  model: string;
  /** `gen_ai.provider.name` (and the older `gen_ai.system`): 'openai' for an OpenAI-compatible API. */
  provider?: string;
  /** The API's base URL, for `server.address` and `server.port`. */
  baseUrl?: string;
  maxOutputTokens?: number;
  prompt?: { name: string; version: number };
}

/**
 * A model call as a span (GenAI semantic conventions, `<operation> <model>`), under the active
 * span (the step that calls the model). Tokens, cost and the error code come from the call's
 * record: `recordOf(result)` (by default `result.record`), or the `record` a thrown
 * `ModelCallError` carries.
 */
export function withModelCallSpan<T>(
  req: ModelCallSpanRequest,
  call: () => Promise<T>,
  recordOf: (result: T) => ModelCallRecord | undefined = (r) => (r as { record?: ModelCallRecord }).record,
): Promise<T> {
  const t = tracingLive();
  if (!t) return call();
  const operation = req.operation ?? 'chat';
  const provider = req.provider ?? 'openai';
  let server: { 'server.address'?: string; 'server.port'?: number } = {};
  if (req.baseUrl) {
    try {
      const u = new URL(req.baseUrl);
      server = { 'server.address': u.hostname, 'server.port': u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80 };
    } catch {
      server = {};
    }
  }
  const fill = (span: Span, record: ModelCallRecord | undefined) => {
    if (!record) return;
    span.setAttribute('gen_ai.response.model', record.model);
    if (record.inputTokens !== null) span.setAttribute('gen_ai.usage.input_tokens', record.inputTokens);
    if (record.outputTokens !== null) span.setAttribute('gen_ai.usage.output_tokens', record.outputTokens);
    if (record.costUsd !== null) span.setAttribute('tollgate.model.cost_usd', record.costUsd);
    if (record.error) span.setAttributes({ 'error.type': record.error.code, 'tollgate.error.code': record.error.code });
  };
  return inSpan(
    `${operation} ${req.model}`,
    {
      kind: t.api.SpanKind.CLIENT,
      attributes: {
        'gen_ai.operation.name': operation,
        'gen_ai.provider.name': provider,
        'gen_ai.system': provider,
        'gen_ai.request.model': req.model,
        ...(req.maxOutputTokens !== undefined ? { 'gen_ai.request.max_tokens': req.maxOutputTokens } : {}),
        ...(req.prompt ? { 'tollgate.prompt.name': req.prompt.name, 'tollgate.prompt.version': req.prompt.version } : {}),
        ...server,
      },
    },
    undefined,
    async () => {
      try {
        return await call();
      } catch (e) {
        const span = t.api.trace.getActiveSpan();
        if (span) fill(span, (e as { record?: ModelCallRecord }).record);
        throw e;
      }
    },
    (span, result) => fill(span, recordOf(result)),
  );
}
