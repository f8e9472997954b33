/**
 * The project configuration file named by `TOLLGATE_CONFIG` (JSON): groups of principals,
 * operators (who may retry or cancel any run), CLI delegations and per-workflow settings. Parsed once with zod and
 * frozen; a bad file stops start-up with the path and the field that is wrong.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { TollgateError } from '../common/errors.ts';
import { closedKeys, unknownKeyMessage, unknownKeys } from './known-keys.ts';
import { parsePrincipal } from '../common/principals.ts';
import { policiesSchema, policyIssues } from '../approvals/policies-schema.ts';
import { oidcProjectSchema } from './oidc.ts';

const principalString = z.string().superRefine((s, ctx) => {
  try {
    parsePrincipal(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

/** How long the personal data of a finished run is kept when `retention.days` is not configured. */
export const DEFAULT_RETENTION_DAYS = 90;
const RETENTION_DAYS = 'must be a whole number of days (1 or more), or "off" to keep run data forever';

/**
 * An object whose keys are all ours: a key nobody reads is refused, naming it and the known ones
 * (zod's plain `z.object` would drop `"groupz"` without a word, leaving the groups unset).
 */
function strictObject<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? iss.keys.map((k) => unknownKeyMessage(k, known)).join(' ') : undefined),
  });
}

const PRICE = 'must be a number of US dollars per million tokens (0 or more)';
const usdPerMillion = z.number({ error: PRICE }).min(0, { error: PRICE });

/** A `model.redact[]` entry: the pattern (and flags) must compile and must not match empty text. */
const redactPattern = strictObject({
  name: z.string().regex(/^[A-Z][A-Z0-9_]*$/, {
    error: 'must be upper-case letters, digits and underscores, starting with a letter (it labels the placeholder: [[NAME_1]])',
  }),
  pattern: z.string().min(1, { error: 'must be a regular expression' }),
  flags: z
    .string()
    .regex(/^[imsu]*$/, { error: 'may only hold the flags i, m, s and u (matching is always global)' })
    .optional(),
}).superRefine((p, ctx) => {
  let re: RegExp;
  try {
    re = new RegExp(p.pattern, p.flags);
  } catch (e) {
    ctx.addIssue({ code: 'custom', path: ['pattern'], message: `is not a valid regular expression: ${(e as Error).message}` });
    return;
  }
  if (re.test('')) ctx.addIssue({ code: 'custom', path: ['pattern'], message: 'matches empty text; it must match at least one character' });
});

/** The model layer's settings (src/model/settings.ts). */
export const modelProjectSchema = strictObject({
  /** USD per million tokens, by model name (`TOLLGATE_MODEL`): a call's recorded cost. */
  prices: z.record(z.string(), strictObject({ inputPerMillion: usdPerMillion, outputPerMillion: usdPerMillion })).default({}),
  /** Patterns replaced by placeholders before anything is sent to the model, besides the built-in kinds. */
  redact: z.array(redactPattern).default([]),
});

export const projectConfigSchema = strictObject({
  groups: z.record(z.string(), z.array(principalString)).default({}),
  operators: z.array(principalString).default([]),
  /**
   * Who a CLI user may act as with `--as`: the OS user's principal (`cli:<host>:<user>`) → the
   * principals it may act for. Without an entry, `--as` is refused (src/intents/authorize.ts).
   */
  cliDelegates: z.record(principalString, z.array(principalString)).default({}),
  /** Per-workflow settings, by workflow name; each workflow checks its own (see src/workflows/). */
  workflows: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  /** Per-tool configuration, by tool name: allowlists, credentials. Never shown to a workflow or model. */
  tools: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  /**
   * Retention (on by default): the personal data of runs finished more than `days` days ago is
   * purged daily (src/audit/retention.ts). `"off"` keeps everything forever.
   */
  retention: strictObject({
    days: z
      .union([z.number({ error: RETENTION_DAYS }).int({ error: RETENTION_DAYS }).min(1, { error: RETENTION_DAYS }), z.literal('off')], {
        error: RETENTION_DAYS,
      })
      .default(DEFAULT_RETENTION_DAYS),
  }).default({ days: DEFAULT_RETENTION_DAYS }),
  /** Model prices and extra redaction patterns (issue 8). */
  model: modelProjectSchema.default({ prices: {}, redact: [] }),
  /**
   * The web console's sign-in (src/console/auth.ts): principal → sha256 (hex) of that person's
   * personal console token. A signed-in person's Retry and Cancel are authorised by the runtime like
   * theirs from chat or the CLI. Optional: without it the console is read-only.
   */
  console: strictObject({
    users: z
      .record(
        principalString,
        z.string().regex(/^[0-9a-f]{64}$/, { error: 'must be the sha256 of the token, 64 lower-case hex digits (`printf %s "$TOKEN" | sha256sum`)' }),
      )
      .default({})
      .superRefine((users, ctx) => {
        const seen = new Map<string, string>();
        for (const [who, hash] of Object.entries(users)) {
          const other = seen.get(hash);
          if (other) ctx.addIssue({ code: 'custom', path: [who], message: `has the same token as ${other}; give each person a token of their own` });
          seen.set(hash, who);
        }
      }),
    /**
     * Sign-in through OpenID Connect (src/config/oidc.ts, src/console/oidc.ts): the issuer, the client
     * id and how an ID token names a person (`"slack"`, `"microsoft"` or a claim template such as
     * `"okta:{tid}:{sub}"`). The client secret comes from TOLLGATE_OIDC_CLIENT_SECRET.
     */
    oidc: oidcProjectSchema.optional(),
  }).optional(),
  /**
   * Approval policies as code, by workflow name (src/approvals/policies-schema.ts, docs/policies.md):
   * ordered rules over the workflow's parameters, the first that matches deciding who approves.
   * A workflow's entry replaces the default policy its own settings define.
   */
  policies: policiesSchema.optional(),
  /**
   * The Slack workspaces (team or enterprise ids) and Microsoft tenants served, in chat and at the
   * console's sign-in (src/chat/tenants.ts). Empty or absent: every workspace and tenant, as before.
   */
  tenants: z
    .array(z.string().regex(/^[^:\s]+$/, { error: 'must be a Slack team or enterprise id (T0123ABCD) or a Microsoft tenant id, without colons or spaces' }))
    .optional(),
});

export type ProjectConfig = z.infer<typeof projectConfigSchema>;

export const EMPTY_PROJECT_CONFIG: ProjectConfig = Object.freeze({
  groups: {},
  operators: [],
  cliDelegates: {},
  workflows: {},
  tools: {},
  retention: { days: DEFAULT_RETENTION_DAYS },
  model: { prices: {}, redact: [] },
});

/** A workflow's or tool's own section, checked with its schema; errors name the file's path to it. */
export function projectSection<S extends z.ZodType>(project: ProjectConfig, kind: 'workflows' | 'tools', name: string, schema: S): z.infer<S> {
  const section = project[kind][name] ?? {};
  // A section's keys are the workflow's or tool's own: a typo (`approvalThresold`) is refused too.
  const known = closedKeys(schema);
  const unknown = known ? unknownKeys(section, known).map((k) => `${[kind, name, k].join('.')}: ${unknownKeyMessage(k, known)}`) : [];
  const parsed = schema.safeParse(section);
  if (!parsed.success || unknown.length > 0) {
    const lines = [...unknown, ...(parsed.success ? [] : parsed.error.issues.map((i) => `${[kind, name, ...i.path.map(String)].join('.')}: ${i.message}`))];
    throw new TollgateError('TG_CONFIG_INVALID', `The project configuration is invalid:\n  ${lines.join('\n  ')}`);
  }
  return parsed.data;
}

/**
 * Sections of `workflows` and `tools` named after nothing this process has: a typo
 * (`"purchase-ordr"`) would otherwise leave the real workflow on its defaults without a word.
 * Checked at start-up, once the workflows and tools are known.
 */
export function checkSectionNames(project: ProjectConfig, known: { workflows: readonly string[]; tools: readonly string[] }): void {
  const lines = (['workflows', 'tools'] as const).flatMap((kind) =>
    unknownKeys(project[kind], known[kind]).map(
      (name) => `${kind}.${name}: ${unknownKeyMessage(name, known[kind], kind === 'workflows' ? 'workflow' : 'tool')}`,
    ),
  );
  lines.push(
    ...unknownKeys(project.policies ?? {}, known.workflows).map((name) => `policies.${name}: ${unknownKeyMessage(name, known.workflows, 'workflow')}`),
  );
  if (lines.length > 0) throw new TollgateError('TG_CONFIG_INVALID', `The project configuration is invalid:\n  ${lines.join('\n  ')}`);
}

export function parseProjectConfig(value: unknown, source = 'project configuration'): ProjectConfig {
  const parsed = projectConfigSchema.safeParse(value);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(top level)'}: ${i.message}`);
    throw new TollgateError('TG_CONFIG_INVALID', `${source} is invalid:\n  ${lines.join('\n  ')}`);
  }
  // A policy rule or escalation the groups of this file can never satisfy is refused now, not at the run that reaches it.
  const unmet = Object.entries(parsed.data.policies ?? {}).flatMap(([wf, p]) => policyIssues((i) => `policies.${wf}.rules.${i}`, p, parsed.data.groups));
  if (unmet.length > 0) throw new TollgateError('TG_CONFIG_INVALID', `${source} is invalid:\n  ${unmet.join('\n  ')}`);
  return Object.freeze(parsed.data);
}

export function loadProjectConfig(path: string | undefined): ProjectConfig {
  if (!path) return EMPTY_PROJECT_CONFIG;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TollgateError('TG_CONFIG_INVALID', `TOLLGATE_CONFIG names ${path}, which cannot be read: ${(e as Error).message}.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TollgateError('TG_CONFIG_INVALID', `TOLLGATE_CONFIG file ${path} is not valid JSON: ${(e as Error).message}.`);
  }
  return parseProjectConfig(json, `TOLLGATE_CONFIG file ${path}`);
}
