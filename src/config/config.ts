/**
 * Configuration: every environment variable Tollgate reads, parsed once with zod into a typed,
 * deep-frozen object.
 *
 * Nothing else in `src/`, `bots/` or `jobs/` reads `process.env`; they receive this object. A bad
 * value stops start-up with one message naming the variable, the value found and what is expected
 * (connection strings and secrets are masked in that message).
 */
import path from 'node:path';
import { z } from 'zod';
import { TollgateError } from '../common/errors.ts';
import { decodeAuditKey } from '../audit/key.ts';
import { tracingSettings, type TracingSettings } from '../telemetry/tracing-config.ts';
import { issuerProblem, type OidcEnv } from './oidc.ts';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

const port = z.coerce.number().int().min(0).max(65535);

const envSchema = z.object({
  DATABASE_URL: z.string().url().optional(),
  /** The schema owner's login, used for migrations only (DATABASE_URL is then the app's least-privilege role). */
  DATABASE_MIGRATION_URL: z.string().url().optional(),
  /** The audit chain's HMAC key (>= 32 bytes, hex or base64); unset: <TOLLGATE_DATA_DIR>/audit.key. */
  TOLLGATE_AUDIT_KEY: z
    .string()
    .refine((v) => decodeAuditKey(v) !== undefined)
    .optional(),
  TOLLGATE_DATA_DIR: z.string().min(1).default('../.tollgate'),
  /** Port of the embedded PostgreSQL; 0 picks a free one (found again by CLI commands through the data dir). */
  TOLLGATE_PG_PORT: port.default(0),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: port.default(3000),
  /** The HTTP door (src/server/door.ts): headers, whole request, idle keep-alive, connections served at once. */
  TOLLGATE_HTTP_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).default(5000),
  TOLLGATE_HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  TOLLGATE_HTTP_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(1000).default(65_000),
  TOLLGATE_HTTP_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(1000),
  /** SIGTERM to exit, whatever clients and steps do (a second signal exits at once). */
  TOLLGATE_SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(1000).default(10_000),
  /** The web console's access token; required when HOST is not a loopback address (src/console/bind.ts). */
  TOLLGATE_CONSOLE_TOKEN: z.string().min(16).optional(),
  /** The console's address as people's browsers reach it (OpenID redirect URI, Secure cookies); default http://<HOST>:<PORT>. */
  TOLLGATE_PUBLIC_URL: z.string().url().optional(),
  /** The console's OpenID Connect sign-in (src/config/oidc.ts); issuer and client id may instead be in console.oidc. */
  TOLLGATE_OIDC_ISSUER: z
    .string()
    .refine((v) => issuerProblem(v) === undefined, { message: 'an https URL (plain http only on a loopback address such as 127.0.0.1)' })
    .optional(),
  TOLLGATE_OIDC_CLIENT_ID: z.string().min(1).optional(),
  TOLLGATE_OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  /** A console session ends when unused this long (minutes), and in any case this long after sign-in (hours). */
  TOLLGATE_CONSOLE_SESSION_IDLE_MINUTES: z.coerce
    .number()
    .int()
    .min(1)
    .max(60 * 24 * 30)
    .default(8 * 60),
  TOLLGATE_CONSOLE_SESSION_MAX_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 365)
    .default(7 * 24),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** 'json' | 'pretty'; unset: pretty in a terminal, JSON otherwise. */
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  TOLLGATE_CONFIG: z.string().min(1).optional(),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(10),
  /** How often a worker looks for jobs scheduled in the future (sleeps, retries, expiries). */
  WORKER_POLL_INTERVAL_MS: z.coerce.number().int().min(50).default(1000),
  /**
   * A worker whose heartbeat is older than this is dead: its jobs are unlocked for others. Every
   * worker beats, and reaps, every quarter of it (src/worker/worker.ts), so the jobs of a process
   * that crashed on another host are unlocked at most this plus a quarter of it after the crash
   * (8 s + 2 s = 10 s by default: issue 23), and its runs resume milliseconds later. A live worker is taken for dead only after four beats in a row did
   * not land: its event loop blocked, or its database unreachable, for about 8 s.
   */
  WORKER_DEAD_AFTER_MS: z.coerce.number().int().min(1000).default(8000),
  /**
   * `tollgate start` runs its worker in a thread of its own (on), so HTTP acknowledgements never
   * wait behind workflow CPU; off runs it on the HTTP server's event loop, as `tollgate worker` does.
   */
  /**
   * `tollgate worker` serves GET /metrics, /healthz and /readyz on this port (on HOST); unset, a
   * worker process serves no HTTP (its steps, runs, queue and outbox are then seen nowhere).
   */
  WORKER_METRICS_PORT: port.optional(),
  TOLLGATE_WORKER_THREAD: z
    .enum(['on', 'off'])
    .transform((v) => v === 'on')
    .default(true),
  /**
   * How many times a run may be recovered (resumed after an advance that did not end: its worker
   * died, or lost its job or connection mid-advance) before it is dead-lettered instead. 0: never
   * recover, set aside at the first interruption.
   */
  TOLLGATE_MAX_RECOVERIES: z.coerce.number().int().min(0).max(1000).default(5),
  /** Unset: 2 × WORKER_CONCURRENCY + 5 (an advance holds a connection; its tools may take another). */
  PG_POOL_SIZE: z.coerce.number().int().min(2).max(1000).optional(),

  SLACK_SIGNING_SECRET: z.string().min(1).optional(),
  SLACK_BOT_TOKEN: z.string().min(1).optional(),
  SLACK_APP_TOKEN: z.string().min(1).optional(),
  SLACK_API_URL: z.string().url().optional(),
  /** How long before an approval's deadline approvers get a reminder, on any chat platform (ms; at most half-way to it). */
  TOLLGATE_APPROVAL_REMINDER_MS: z.coerce.number().int().min(0).optional(),
  /** The wave-1 name of TOLLGATE_APPROVAL_REMINDER_MS, still read. */
  SLACK_APPROVAL_REMINDER_MS: z.coerce.number().int().min(0).optional(),

  MicrosoftAppId: z.string().optional(),
  MicrosoftAppPassword: z.string().optional(),
  MicrosoftAppType: z.enum(['MultiTenant', 'SingleTenant', 'UserAssignedMsi']).optional(),
  MicrosoftAppTenantId: z.string().optional(),
  TEAMS_ALLOW_UNAUTHENTICATED: bool.default(false),
  TEAMS_SERVICE_URL: z.string().url().optional(),

  OPENAI_API_KEY: z.string().min(1).optional(),
  OPENAI_BASE_URL: z.string().url().optional(),
  TOLLGATE_MODEL: z.string().min(1).optional(),
  /** The overall deadline of one model call, retries and waits included (ms). */
  TOLLGATE_MODEL_TIMEOUT_MS: z.coerce.number().int().min(1).default(30_000),
  /** Retries of a model call that failed to connect, or answered 429 or 5xx (within the deadline). */
  TOLLGATE_MODEL_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
});

export type EnvConfig = z.infer<typeof envSchema>;

/** The HTTP server's timeouts and connection budget, applied by src/server/door.ts. */
export interface HttpLimits {
  /** The request line and headers must arrive within this (TOLLGATE_HTTP_HEADERS_TIMEOUT_MS). */
  readonly headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this (TOLLGATE_HTTP_REQUEST_TIMEOUT_MS). */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this (TOLLGATE_HTTP_KEEP_ALIVE_TIMEOUT_MS). */
  readonly keepAliveTimeoutMs: number;
  /** Connections served at once (TOLLGATE_HTTP_MAX_CONNECTIONS); a few more are kept for health checks. */
  readonly maxConnections: number;
}

export interface Config {
  readonly databaseUrl: string | undefined;
  /** DATABASE_MIGRATION_URL: the owner's login for migrations; unset, DATABASE_URL migrates too. */
  readonly databaseMigrationUrl: string | undefined;
  readonly audit: {
    /** TOLLGATE_AUDIT_KEY decoded, as hex; undefined: the data dir's audit.key file. */
    readonly keyHex: string | undefined;
  };
  readonly dataDir: string;
  readonly embeddedPgPort: number;
  readonly host: string;
  readonly port: number;
  /** The HTTP server's timeouts and connection budget (src/server/door.ts). */
  readonly http: HttpLimits;
  /** TOLLGATE_SHUTDOWN_TIMEOUT_MS: from SIGTERM to exit at the latest. */
  readonly shutdownTimeoutMs: number;
  readonly console: {
    /** TOLLGATE_CONSOLE_TOKEN: needed to open `/console`; required on a non-local bind. */
    readonly token: string | undefined;
    /** TOLLGATE_PUBLIC_URL without a trailing slash; default http://<HOST>:<PORT>. */
    readonly publicUrl: string;
    /** TOLLGATE_OIDC_*: merged with the project's console.oidc by src/config/oidc.ts. */
    readonly oidc: OidcEnv;
    /** Session lifetimes (TOLLGATE_CONSOLE_SESSION_IDLE_MINUTES, TOLLGATE_CONSOLE_SESSION_MAX_HOURS), in ms. */
    readonly sessionIdleMs: number;
    readonly sessionMaxMs: number;
  };
  readonly logLevel: EnvConfig['LOG_LEVEL'];
  readonly logFormat: 'json' | 'pretty' | undefined;
  readonly projectConfigPath: string | undefined;
  readonly worker: {
    readonly concurrency: number;
    readonly pollIntervalMs: number;
    readonly deadAfterMs: number;
    /** `tollgate start` runs the worker in a thread of its own (TOLLGATE_WORKER_THREAD, default on). */
    readonly thread: boolean;
    /** WORKER_METRICS_PORT: where `tollgate worker` serves /metrics, /healthz and /readyz; undefined: no HTTP. */
    readonly metricsPort: number | undefined;
  };
  readonly pgPoolSize: number;
  readonly runtime: {
    /** Recoveries allowed per run before it is dead-lettered (TOLLGATE_MAX_RECOVERIES). */
    readonly maxRecoveries: number;
  };
  readonly slack: {
    readonly signingSecret: string | undefined;
    readonly botToken: string | undefined;
    readonly appToken: string | undefined;
    readonly apiUrl: string | undefined;
  };
  readonly chat: {
    /** Remind approvers this long before an approval's deadline (at most half-way to it). */
    readonly approvalReminderLeadMs: number;
  };
  readonly teams: {
    readonly appId: string | undefined;
    readonly appPassword: string | undefined;
    readonly appType: EnvConfig['MicrosoftAppType'];
    readonly appTenantId: string | undefined;
    readonly allowUnauthenticated: boolean;
    /** The Bot Connector for tenants Tollgate has not heard from yet (TEAMS_SERVICE_URL). */
    readonly serviceUrl: string | undefined;
    /** botbuilder's own keys, passed through untouched to ConfigurationBotFrameworkAuthentication. */
    readonly botFrameworkSettings: Readonly<Record<string, string>>;
  };
  /** OpenTelemetry tracing, from the standard OTEL_* variables (src/telemetry/tracing-config.ts). */
  readonly tracing: TracingSettings;
  readonly model: {
    readonly apiKey: string | undefined;
    readonly baseUrl: string | undefined;
    readonly name: string | undefined;
    /** TOLLGATE_MODEL_TIMEOUT_MS: one call's overall deadline, retries included. */
    readonly timeoutMs: number;
    readonly maxRetries: number;
  };
}

/** botbuilder's own settings, read as they are and passed through unchanged to the Teams adapter (bots/teams/adapter.ts). */
const BOT_FRAMEWORK_KEYS = [
  'MicrosoftAppId',
  'MicrosoftAppPassword',
  'MicrosoftAppType',
  'MicrosoftAppTenantId',
  'ChannelService',
  'ValidateAuthority',
  'ToChannelFromBotLoginUrl',
  'ToChannelFromBotOAuthScope',
  'ToBotFromChannelTokenIssuer',
  'OAuthUrl',
  'ToBotFromChannelOpenIdMetadataUrl',
  'ToBotFromEmulatorOpenIdMetadataUrl',
  'CallerId',
] as const;

const SECRET_NAMES = /SECRET|TOKEN|PASSWORD|KEY|DATABASE_URL|DATABASE_MIGRATION_URL/i;

/** Shows a value in an error message without leaking a secret or a connection string's password. */
export function maskValue(name: string, value: string | undefined): string {
  if (value === undefined) return '(unset)';
  const s = value;
  if (name === 'DATABASE_URL' || name === 'DATABASE_MIGRATION_URL') {
    // Only a well-formed URL's password can be cut out; anything else is hidden whole.
    return /^postgres(ql)?:\/\/[^\s]*$/.test(s) ? JSON.stringify(s.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@')) : `(hidden, ${s.length} chars)`;
  }
  if (SECRET_NAMES.test(name)) return s.length <= 4 ? '***' : `${s.slice(0, 2)}***(${s.length} chars)`;
  return JSON.stringify(s);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Parses the environment. Throws a TollgateError (TG_CONFIG_INVALID) naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset": `FOO= npm start` should not count as a value.
  const cleaned: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') cleaned[k] = v;

  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '?');
      return `${name}: got ${maskValue(name, cleaned[name])}; expected ${describeExpectation(issue, name)}`;
    });
    throw new TollgateError('TG_CONFIG_INVALID', `Invalid configuration. Fix these environment variables and start again:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  // Each running advance holds one connection for its whole length, and Graphile Worker and the
  // heartbeat need a few more: a smaller pool stalls the worker and gets it taken for dead.
  const minPool = e.WORKER_CONCURRENCY + 5;
  if (e.PG_POOL_SIZE !== undefined && e.PG_POOL_SIZE < minPool) {
    throw new TollgateError(
      'TG_CONFIG_INVALID',
      `Invalid configuration. Fix these environment variables and start again:\n  PG_POOL_SIZE: got "${e.PG_POOL_SIZE}"; expected at least WORKER_CONCURRENCY + 5 = ${minPool} ` +
        `(each running job holds a connection), or leave it unset for ${2 * e.WORKER_CONCURRENCY + 5}.`,
    );
  }
  // Node refuses a headers timeout longer than the request's; say which variables instead.
  if (e.TOLLGATE_HTTP_HEADERS_TIMEOUT_MS > e.TOLLGATE_HTTP_REQUEST_TIMEOUT_MS) {
    throw new TollgateError(
      'TG_CONFIG_INVALID',
      `Invalid configuration. Fix these environment variables and start again:\n  TOLLGATE_HTTP_HEADERS_TIMEOUT_MS: got "${e.TOLLGATE_HTTP_HEADERS_TIMEOUT_MS}"; expected at most TOLLGATE_HTTP_REQUEST_TIMEOUT_MS (${e.TOLLGATE_HTTP_REQUEST_TIMEOUT_MS}): the headers are part of the request.`,
    );
  }
  const botFrameworkSettings: Record<string, string> = {};
  for (const key of BOT_FRAMEWORK_KEYS) {
    const v = cleaned[key];
    if (v !== undefined) botFrameworkSettings[key] = v;
  }
  return deepFreeze<Config>({
    databaseUrl: e.DATABASE_URL,
    databaseMigrationUrl: e.DATABASE_MIGRATION_URL,
    audit: { keyHex: e.TOLLGATE_AUDIT_KEY ? decodeAuditKey(e.TOLLGATE_AUDIT_KEY)?.toString('hex') : undefined },
    dataDir: path.resolve(e.TOLLGATE_DATA_DIR),
    embeddedPgPort: e.TOLLGATE_PG_PORT,
    host: e.HOST,
    port: e.PORT,
    http: {
      headersTimeoutMs: e.TOLLGATE_HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: e.TOLLGATE_HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: e.TOLLGATE_HTTP_KEEP_ALIVE_TIMEOUT_MS,
      maxConnections: e.TOLLGATE_HTTP_MAX_CONNECTIONS,
    },
    shutdownTimeoutMs: e.TOLLGATE_SHUTDOWN_TIMEOUT_MS,
    console: {
      token: e.TOLLGATE_CONSOLE_TOKEN,
      publicUrl: (e.TOLLGATE_PUBLIC_URL ?? `http://${e.HOST.includes(':') ? `[${e.HOST}]` : e.HOST}:${e.PORT}`).replace(/\/+$/, ''),
      oidc: { issuer: e.TOLLGATE_OIDC_ISSUER, clientId: e.TOLLGATE_OIDC_CLIENT_ID, clientSecret: e.TOLLGATE_OIDC_CLIENT_SECRET },
      sessionIdleMs: e.TOLLGATE_CONSOLE_SESSION_IDLE_MINUTES * 60_000,
      sessionMaxMs: e.TOLLGATE_CONSOLE_SESSION_MAX_HOURS * 3_600_000,
    },
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    projectConfigPath: e.TOLLGATE_CONFIG ? path.resolve(e.TOLLGATE_CONFIG) : undefined,
    worker: {
      concurrency: e.WORKER_CONCURRENCY,
      pollIntervalMs: e.WORKER_POLL_INTERVAL_MS,
      deadAfterMs: e.WORKER_DEAD_AFTER_MS,
      thread: e.TOLLGATE_WORKER_THREAD,
      metricsPort: e.WORKER_METRICS_PORT,
    },
    pgPoolSize: e.PG_POOL_SIZE ?? 2 * e.WORKER_CONCURRENCY + 5,
    runtime: { maxRecoveries: e.TOLLGATE_MAX_RECOVERIES },
    slack: {
      signingSecret: e.SLACK_SIGNING_SECRET,
      botToken: e.SLACK_BOT_TOKEN,
      appToken: e.SLACK_APP_TOKEN,
      apiUrl: e.SLACK_API_URL,
    },
    chat: { approvalReminderLeadMs: e.TOLLGATE_APPROVAL_REMINDER_MS ?? e.SLACK_APPROVAL_REMINDER_MS ?? 3_600_000 },
    teams: {
      appId: e.MicrosoftAppId,
      appPassword: e.MicrosoftAppPassword,
      appType: e.MicrosoftAppType,
      appTenantId: e.MicrosoftAppTenantId,
      allowUnauthenticated: e.TEAMS_ALLOW_UNAUTHENTICATED,
      serviceUrl: e.TEAMS_SERVICE_URL,
      botFrameworkSettings,
    },
    model: {
      apiKey: e.OPENAI_API_KEY,
      baseUrl: e.OPENAI_BASE_URL,
      name: e.TOLLGATE_MODEL,
      timeoutMs: e.TOLLGATE_MODEL_TIMEOUT_MS,
      maxRetries: e.TOLLGATE_MODEL_MAX_RETRIES,
    },
    tracing: tracingSettings(cleaned),
  });
}

function describeExpectation(issue: z.core.$ZodIssue, name: string): string {
  switch (issue.code) {
    case 'invalid_value':
      return `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_format':
      if (issue.format !== 'url') return `a ${issue.format}`;
      return name.startsWith('DATABASE_') ? 'a URL such as postgres://user:pass@host:5432/db' : 'a URL such as https://example.com/api/';
    case 'too_small':
      if (name === 'TOLLGATE_CONSOLE_TOKEN') return `at least ${String(issue.minimum)} characters (e.g. the output of \`openssl rand -hex 32\`)`;
      return `a value >= ${String(issue.minimum)}`;
    case 'too_big':
      return `a value <= ${String(issue.maximum)}`;
    case 'custom':
      return name === 'TOLLGATE_AUDIT_KEY'
        ? 'at least 32 random bytes written in hex or base64 (e.g. the output of `openssl rand -hex 32`), the same on every process'
        : issue.message;
    case 'invalid_type':
      return issue.expected === 'number' ? 'a number' : `a ${issue.expected}`;
    default:
      return issue.message;
  }
}
