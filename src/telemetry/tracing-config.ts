/**
 * The tracing settings, read from OpenTelemetry's standard variables (and nothing of our own) by
 * src/config/config.ts, the one reader of the environment. No OpenTelemetry module is imported here: the
 * configuration is parsed by every command, and the SDK is loaded only when tracing is on
 * (src/telemetry/tracing.ts `startTracing`).
 *
 * Tracing is on when an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`), unless `OTEL_SDK_DISABLED=true` or
 * `OTEL_TRACES_EXPORTER=none`. The exporter itself reads its other standard variables
 * (`OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`, `_COMPRESSION`, certificates), as the specification
 * has every OTLP exporter do.
 */
import { TollgateError } from '../common/errors.ts';

export const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerName = (typeof SAMPLERS)[number];

export interface TracingSettings {
  readonly enabled: boolean;
  /** The URL spans are POSTed to (OTLP over HTTP, JSON). */
  readonly endpoint: string | undefined;
  /** OTEL_SERVICE_NAME, else `service.name` of OTEL_RESOURCE_ATTRIBUTES, else 'tollgate'. */
  readonly serviceName: string;
  /** OTEL_RESOURCE_ATTRIBUTES (`key=value,…`, percent-decoded), without service.name. */
  readonly resourceAttributes: Readonly<Record<string, string>>;
  /** OTEL_TRACES_SAMPLER (default parentbased_always_on) and its ratio, OTEL_TRACES_SAMPLER_ARG (default 1). */
  readonly sampler: { readonly name: SamplerName; readonly ratio: number };
  /** Said once at start-up: a setting that is honoured differently from how it reads. */
  readonly notice: string | undefined;
}

const isTrue = (v: string | undefined) => v?.trim().toLowerCase() === 'true';

function trimmed(env: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function validUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** `key1=value1,key2=value2`, percent-decoded, as the specification writes OTEL_RESOURCE_ATTRIBUTES. */
function parseResourceAttributes(text: string | undefined, problems: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const pair of text.split(',')) {
    if (!pair.trim()) continue;
    const at = pair.indexOf('=');
    let ok = false;
    try {
      if (at > 0) {
        out[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim());
        ok = true;
      }
    } catch {
      // a malformed percent-escape (URIError): reported below, as a pair without a key is
    }
    if (!ok) {
      problems.push(
        `OTEL_RESOURCE_ATTRIBUTES: got ${JSON.stringify(pair)}; expected key=value pairs separated by commas (percent-encode "," and "=" inside values)`,
      );
    }
  }
  return out;
}

const OFF: TracingSettings = {
  enabled: false,
  endpoint: undefined,
  serviceName: 'tollgate',
  resourceAttributes: {},
  sampler: { name: 'parentbased_always_on', ratio: 1 },
  notice: undefined,
};

/**
 * The tracing settings of `env`. With tracing on, throws TG_CONFIG_INVALID naming every bad
 * variable; with it off the other OTEL_* variables are not read (they may be set for other
 * programs), so they cannot stop Tollgate.
 */
export function tracingSettings(env: Readonly<Record<string, string | undefined>>): TracingSettings {
  const problems: string[] = [];
  const exporters = (trimmed(env, 'OTEL_TRACES_EXPORTER') ?? 'otlp')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (isTrue(env.OTEL_SDK_DISABLED) || exporters.includes('none')) return OFF;
  const tracesEndpoint = trimmed(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const baseEndpoint = trimmed(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  for (const [name, value] of [
    ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', tracesEndpoint],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', baseEndpoint],
  ] as const) {
    if (value && !validUrl(value)) problems.push(`${name}: got ${JSON.stringify(value)}; expected an http or https URL such as http://localhost:4318`);
  }
  // The specification: the signal's own variable is used as it is; the base one gets /v1/traces.
  const endpoint = tracesEndpoint ?? (baseEndpoint ? `${baseEndpoint}${baseEndpoint.endsWith('/') ? '' : '/'}v1/traces` : undefined);
  if (endpoint === undefined) return OFF;

  const unknownExporter = exporters.find((e) => e !== 'otlp' && e !== 'none');
  if (unknownExporter) {
    problems.push(
      `OTEL_TRACES_EXPORTER: got ${JSON.stringify(unknownExporter)}; expected "otlp" (the default) or "none" (Tollgate exports traces over OTLP only)`,
    );
  }

  let notice: string | undefined;
  const protocolName = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?.trim() ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = trimmed(env, protocolName);
  if (protocol === 'grpc') {
    problems.push(
      `${protocolName}: got "grpc"; expected "http/json" (Tollgate exports OTLP over HTTP; point the endpoint at the collector's HTTP port, usually 4318)`,
    );
  } else if (protocol === 'http/protobuf') {
    notice = `${protocolName} is http/protobuf; Tollgate sends OTLP over HTTP as JSON (http/json), which OTLP/HTTP receivers such as the OpenTelemetry Collector accept on the same port.`;
  } else if (protocol !== undefined && protocol !== 'http/json') {
    problems.push(`${protocolName}: got ${JSON.stringify(protocol)}; expected "http/json"`);
  }

  const samplerText = (trimmed(env, 'OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on').toLowerCase();
  const samplerName = (SAMPLERS as readonly string[]).includes(samplerText) ? (samplerText as SamplerName) : undefined;
  if (!samplerName) {
    problems.push(`OTEL_TRACES_SAMPLER: got ${JSON.stringify(env.OTEL_TRACES_SAMPLER)}; expected one of ${SAMPLERS.map((s) => JSON.stringify(s)).join(', ')}`);
  }
  const argText = trimmed(env, 'OTEL_TRACES_SAMPLER_ARG');
  let ratio = 1;
  if (argText !== undefined && samplerName?.endsWith('traceidratio')) {
    ratio = Number(argText);
    if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
      problems.push(`OTEL_TRACES_SAMPLER_ARG: got ${JSON.stringify(argText)}; expected a sampling ratio between 0 and 1 (e.g. 0.25)`);
    }
  }

  const resourceAttributes = parseResourceAttributes(trimmed(env, 'OTEL_RESOURCE_ATTRIBUTES'), problems);
  const serviceName = trimmed(env, 'OTEL_SERVICE_NAME') ?? resourceAttributes['service.name'] ?? 'tollgate';
  delete resourceAttributes['service.name'];

  if (problems.length > 0) {
    throw new TollgateError('TG_CONFIG_INVALID', `Invalid configuration. Fix these environment variables and start again:\n  ${problems.join('\n  ')}`);
  }
  return {
    enabled: true,
    endpoint,
    serviceName,
    resourceAttributes,
    sampler: { name: samplerName ?? 'parentbased_always_on', ratio },
    notice,
  };
}
