/**
 * OpenTelemetry tracing: set-up and the few primitives the span helpers of
 * src/telemetry/tracing-spans.ts are written with.
 *
 * General notes
 * - Off unless `startTracing` (serving commands, the worker thread) or `installTracing` (tests) ran.
 *   Off costs nothing: no OpenTelemetry module is even loaded (the API and the SDK are imported
 *   here, dynamically, only when tracing starts), and every helper's first line is `if (!live)`,
 *   after which it calls straight through.
 * - One trace per run, whichever process or thread makes its spans: the run's trace context is
 *   stored with the run (`runs.trace_context`, a W3C traceparent) and every span of the run is made
 *   under it. It names the run's root span `run <workflow>`, which is exported once, when the run
 *   first ends (with its start time back-dated to the run's creation). Only then is the span's
 *   duration known, and by then the process that started it may be long gone, so the span is made
 *   again with the ids that were stored: that is what `RootIds` is for.
 * - The SDK is given everything explicitly (sampler, resource), from the settings src/config/config.ts
 *   parsed, rather than left to read the environment itself.
 */
import type * as Api from '@opentelemetry/api';
import type { Context, Span, SpanOptions, Tracer } from '@opentelemetry/api';
import type { IdGenerator, Sampler, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type { TracingSettings } from './tracing-config.ts';

/** The tracer's name, as backends show the instrumentation scope. */
export const TRACER_NAME = 'tollgate';

/** Span ids made by the SDK, except while a run's root span is made again with its stored ids. */
class RootIds implements IdGenerator {
  forced: { traceId: string; spanId: string } | undefined;
  constructor(private readonly random: IdGenerator) {}
  generateTraceId(): string {
    return this.forced?.traceId ?? this.random.generateTraceId();
  }
  generateSpanId(): string {
    return this.forced?.spanId ?? this.random.generateSpanId();
  }
}

interface Live {
  api: typeof Api;
  tracer: Tracer;
  ids: RootIds;
}

let live: Live | undefined;

/** The tracer and API when tracing is on; undefined when off (then do nothing at all). */
export function tracingLive(): Live | undefined {
  return live;
}

export function tracingEnabled(): boolean {
  return live !== undefined;
}

export interface TracingHandle {
  /** True when this call installed a tracer provider (tracing on). */
  readonly installed: boolean;
  /** Exports what is buffered now. */
  forceFlush(): Promise<void>;
  /** Exports what is buffered (waiting at most a few seconds) and uninstalls the provider. */
  shutdown(): Promise<void>;
}

const NOT_INSTALLED: TracingHandle = { installed: false, forceFlush: async () => {}, shutdown: async () => {} };

/** How long a shutdown waits for the exporter: a collector that is down must not hold up SIGTERM. */
const SHUTDOWN_WAIT_MS = 5000;

export interface InstallOptions {
  spanProcessors: SpanProcessor[];
  sampler?: TracingSettings['sampler'];
  serviceName?: string;
  resourceAttributes?: Readonly<Record<string, string>>;
}

/**
 * Installs a tracer provider as the process's (or thread's) global one, with our id generator,
 * the W3C trace-context propagator and an async-local context manager. `startTracing` uses it
 * with the OTLP exporter; tests use it with an `InMemorySpanExporter` and a `SimpleSpanProcessor`.
 */
export async function installTracing(opts: InstallOptions): Promise<TracingHandle> {
  if (live) throw new TollgateError('TG_TRACING_STATE', 'Tracing is already installed in this thread; shut the earlier handle down first.');
  const [api, node, base, resources] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/resources'),
  ]);
  const ids = new RootIds(new base.RandomIdGenerator());
  const provider = new node.NodeTracerProvider({
    resource: resources
      .defaultResource()
      .merge(resources.resourceFromAttributes({ ...opts.resourceAttributes, 'service.name': opts.serviceName ?? 'tollgate' })),
    sampler: buildSampler(base, opts.sampler ?? { name: 'parentbased_always_on', ratio: 1 }),
    idGenerator: ids,
    spanProcessors: opts.spanProcessors,
  });
  provider.register();
  live = { api, tracer: api.trace.getTracer(TRACER_NAME), ids };
  let stopping: Promise<void> | undefined;
  return {
    installed: true,
    forceFlush: () => provider.forceFlush(),
    shutdown: () =>
      (stopping ??= (async () => {
        live = undefined;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          provider.shutdown().catch(() => {}),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, SHUTDOWN_WAIT_MS);
            timer.unref();
          }),
        ]);
        clearTimeout(timer);
        api.trace.disable();
        api.context.disable();
        api.propagation.disable();
      })()),
  };
}

function buildSampler(base: typeof import('@opentelemetry/sdk-trace-base'), s: TracingSettings['sampler']): Sampler {
  switch (s.name) {
    case 'always_on':
      return new base.AlwaysOnSampler();
    case 'always_off':
      return new base.AlwaysOffSampler();
    case 'traceidratio':
      return new base.TraceIdRatioBasedSampler(s.ratio);
    case 'parentbased_always_on':
      return new base.ParentBasedSampler({ root: new base.AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new base.ParentBasedSampler({ root: new base.AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new base.ParentBasedSampler({ root: new base.TraceIdRatioBasedSampler(s.ratio) });
  }
}

/**
 * Starts tracing for a serving process or the worker thread when the settings say so (an OTLP
 * endpoint is set); otherwise does nothing and loads nothing. Shut the handle down on the way out
 * so the last spans are exported.
 */
export async function startTracing(settings: TracingSettings, log: Logger): Promise<TracingHandle> {
  if (!settings.enabled || live) return NOT_INSTALLED;
  const [{ OTLPTraceExporter }, { BatchSpanProcessor }] = await Promise.all([
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/sdk-trace-base'),
  ]);
  const exporter = new OTLPTraceExporter({ url: settings.endpoint });
  const handle = await installTracing({
    spanProcessors: [new BatchSpanProcessor(exporter)],
    sampler: settings.sampler,
    serviceName: settings.serviceName,
    resourceAttributes: settings.resourceAttributes,
  });
  if (settings.notice) log.warn(settings.notice);
  log.info({ endpoint: settings.endpoint, service: settings.serviceName, sampler: settings.sampler.name }, 'tracing on: spans are exported over OTLP/HTTP');
  return handle;
}

// ----- primitives for the span helpers -----------------------------------------------------------

/** A run's stored trace context (`runs.trace_context`). */
export interface StoredTraceContext {
  traceparent: string;
  tracestate?: string;
  /** Set once the run's root span was exported (a retried run ends again; its root is made once). */
  ended?: boolean;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export function parseTraceparent(traceparent: string): { traceId: string; spanId: string; traceFlags: number } | undefined {
  const m = TRACEPARENT.exec(traceparent);
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16) };
}

function asStored(stored: unknown): StoredTraceContext | undefined {
  const s = stored as StoredTraceContext | null | undefined;
  return s && typeof s.traceparent === 'string' ? s : undefined;
}

/** The context whose parent is the run's root span, or undefined for a run without one. */
export function runContext(stored: unknown): Context | undefined {
  const t = live;
  const s = asStored(stored);
  const ids = s && parseTraceparent(s.traceparent);
  if (!t || !ids) return undefined;
  return t.api.trace.setSpanContext(t.api.ROOT_CONTEXT, {
    ...ids,
    isRemote: true,
    ...(s.tracestate ? { traceState: t.api.createTraceState(s.tracestate) } : {}),
  });
}

/**
 * A new run's trace context to store: the ids (and sampling decision) of its root span, made now
 * and exported when the run ends (`endRootSpan`). Null when tracing is off.
 */
export function newRootContext(name: string): StoredTraceContext | null {
  const t = live;
  if (!t) return null;
  // Never ended: this span only draws the ids and the sampling decision.
  const sc = t.tracer.startSpan(name, { root: true }).spanContext();
  const flags = sc.traceFlags.toString(16).padStart(2, '0');
  const tracestate = sc.traceState?.serialize();
  return { traceparent: `00-${sc.traceId}-${sc.spanId}-${flags}`, ...(tracestate ? { tracestate } : {}) };
}

/** Makes and ends the root span of a stored context, from `start` to `end`, when it was sampled. */
export function endRootSpan(stored: unknown, name: string, start: Date, end: Date, fill: (span: Span) => void): void {
  const t = live;
  const s = asStored(stored);
  const ids = s && parseTraceparent(s.traceparent);
  if (!t || !ids || (ids.traceFlags & 1) === 0) return;
  t.ids.forced = { traceId: ids.traceId, spanId: ids.spanId };
  let span: Span;
  try {
    span = t.tracer.startSpan(name, { root: true, startTime: start });
  } finally {
    t.ids.forced = undefined;
  }
  fill(span);
  span.end(end);
}

/** Marks a span failed by `e`: the exception, status ERROR, `error.type` and our TG_ code. */
export function recordError(span: Span, e: unknown): void {
  const t = live;
  if (!t) return;
  const err = e instanceof Error ? e : new Error(String(e)); // not a Tollgate error: a non-Error thrown by someone else, wrapped only to record it
  const code = (e as { code?: unknown } | null)?.code;
  span.recordException(err);
  span.setStatus({ code: t.api.SpanStatusCode.ERROR, message: err.message });
  span.setAttribute('error.type', typeof code === 'string' ? code : err.name);
  if (typeof code === 'string' && code.startsWith('TG_')) span.setAttribute('tollgate.error.code', code);
}

/**
 * Runs `fn` inside a new span (child of `parent`, else of the active span), ending it when `fn`
 * settles; a throw is recorded on the span and rethrown. `after` adds what only the result tells.
 * Call only when tracing is on.
 */
export async function inSpan<T>(
  name: string,
  options: SpanOptions,
  parent: Context | undefined,
  fn: () => Promise<T>,
  after?: (span: Span, result: T) => void,
): Promise<T> {
  const t = live;
  if (!t) return fn();
  const ctx = parent ?? t.api.context.active();
  const span = t.tracer.startSpan(name, options, ctx);
  try {
    const out = await t.api.context.with(t.api.trace.setSpan(ctx, span), fn);
    after?.(span, out);
    return out;
  } catch (e) {
    recordError(span, e);
    throw e;
  } finally {
    span.end();
  }
}
