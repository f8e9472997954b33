/**
 * `deploy`: inputs service, version, environment. Reads the current version over HTTP
 * (`workflows.deploy.currentVersionUrl`, GET, `{service}` and `{environment}` filled in), asks
 * whom the workflow's policy names (`policies.deploy`, else by default group `release-managers`
 * for production deploys; other environments pass a gate approved by rule), POSTs {service, version, environment} to `workflows.deploy.webhookUrl` with
 * the call's idempotency key, then reads the current version again until it is the new one.
 *
 * Both HTTP calls go through `http.request`, so their hosts must be on its allowlist; the POST is
 * a write covered by the gate, which shows both the parameters and the exact request.
 *
 * Environment names are compared trimmed and in lower case, and the input is normalised the same
 * way, so `Production`, ` PROD ` or a name nobody thought of is gated like production: a mistake
 * in the list costs an approval, never a skipped one.
 */
import { z } from 'zod';
import { NonRetriableError, TollgateError } from '../common/errors.ts';
import { projectSection, type ProjectConfig } from '../config/project-config.ts';
import { defineWorkflow } from '../runtime/workflow.ts';
import { HTTP_TOOL } from '../tools/http-request.ts';
import type { WorkflowPolicyConfig } from '../approvals/policies-schema.ts';
import { policyGate, workflowPolicy, type EffectivePolicy } from '../approvals/policies.ts';
import { rejectionError } from './rejection.ts';
import { durationSetting } from '../runtime/duration.ts';

export const deploySettings = z.object({
  webhookUrl: z.string().url().optional(),
  currentVersionUrl: z.string().min(1).optional(),
  approverGroup: z.string().min(1).default('release-managers'),
  /** The only environments deployed to without a person's approval; every other name is production. */
  nonProductionEnvironments: z.array(z.string().trim().toLowerCase().min(1)).default([]),
  /** Replaced by nonProductionEnvironments (a list of production names let every other spelling through). */
  productionEnvironments: z
    .unknown()
    .optional()
    .refine((v) => v === undefined, {
      message:
        'is no longer read: every environment is production unless listed in workflows.deploy.nonProductionEnvironments (e.g. ["staging", "dev"]). Remove productionEnvironments and list the non-production ones there.',
    }),
  approvalTimeout: durationSetting.optional(),
  /** How often to read the version after the POST before giving up, one second apart. */
  verifyAttempts: z.number().int().min(1).default(10),
});

export const deployInput = z.object({
  service: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" or "-"')
    .describe('Service to deploy'),
  version: z.string().trim().min(1).max(100).describe('Version to deploy'),
  environment: z
    .string()
    .trim()
    .toLowerCase()
    .regex(/^[a-z0-9._-]+$/, 'letters, digits, ".", "_" or "-"')
    .describe('Target environment, e.g. staging, production'),
});

function versionOf(body: unknown): string | null {
  if (typeof body === 'string') return body.trim() || null;
  if (body && typeof body === 'object' && typeof (body as { version?: unknown }).version === 'string') return (body as { version: string }).version;
  return null;
}

/**
 * The default policy, from the settings: the listed non-production environments approved by rule,
 * every other one (production, however spelled) by the approver group.
 */
export function deployPolicy(project: ProjectConfig): WorkflowPolicyConfig {
  const s = projectSection(project, 'workflows', 'deploy', deploySettings);
  const nonProduction = s.nonProductionEnvironments;
  return {
    rules: [
      ...(nonProduction.length
        ? [
            {
              id: 'non-production',
              when: { environment: { in: nonProduction } },
              approve: '{environment} is not a production environment',
              risk: 'low' as const,
            },
          ]
        : []),
      {
        id: 'production',
        groups: [s.approverGroup],
        ...(s.approvalTimeout === undefined ? {} : { timeout: s.approvalTimeout }),
        risk: 'high',
        rationale: '{environment} is a production environment.',
      },
    ],
    examples: [{ environment: 'production' }, ...nonProduction.map((environment) => ({ environment }))],
  };
}

export function deployWorkflow(project: ProjectConfig) {
  const s = projectSection(project, 'workflows', 'deploy', deploySettings);
  const policy = workflowPolicy(project, 'deploy', deployPolicy(project), Object.keys(deployInput.shape)) as EffectivePolicy;
  return defineWorkflow({
    name: 'deploy',
    version: 1,
    description:
      policy.source === 'default'
        ? `Deploy a service version; every environment but ${s.nonProductionEnvironments.join(', ') || '(none configured)'} needs approval by group ${s.approverGroup}.`
        : `Deploy a service version; approval follows policy${policy.version === null ? '' : ` version ${policy.version}`} (rules ${policy.rules.map((r) => r.id).join(', ')}).`,
    input: deployInput,
    tools: [HTTP_TOOL],
    run: async (ctx) => {
      const { service, version, environment } = ctx.input;
      if (!s.webhookUrl || !s.currentVersionUrl) {
        throw new NonRetriableError(
          'The deploy workflow needs workflows.deploy.webhookUrl and workflows.deploy.currentVersionUrl in the TOLLGATE_CONFIG file.',
          undefined,
          'TG_CONFIG_INVALID',
        );
      }
      const versionUrl = s.currentVersionUrl.replaceAll('{service}', encodeURIComponent(service)).replaceAll('{environment}', encodeURIComponent(environment));
      const read = async () => versionOf((await ctx.tool<{ body: unknown }>(HTTP_TOOL, { method: 'GET', url: versionUrl })).body);
      const current = await read();
      const post = { method: 'POST', url: s.webhookUrl, body: { service, version, environment } };
      const gate = await ctx.approval('approval', {
        ...policyGate(policy, { service, version, environment }),
        summary: `Deploy ${service} ${version} to ${environment} (now ${current ?? 'unknown'})`,
        params: { service, version, environment, currentVersion: current },
        tool: HTTP_TOOL,
        toolInput: post,
      });
      if (!gate.approved) throw rejectionError('Deploy', gate, ctx.runId);
      await ctx.tool(HTTP_TOOL, post);
      for (let i = 1; ; i++) {
        const now = await read();
        if (now === version) return { service, version, environment, previousVersion: current, approvalId: gate.approvalId };
        if (i >= s.verifyAttempts) {
          throw new TollgateError(
            'TG_STEP_FAILED',
            `Deploy of ${service} ${version} to ${environment} was requested but not verified: the version is still ${now ?? 'unknown'} after ${i} reads.`,
            { service, version, environment },
          );
        }
        await ctx.sleep('verify wait', 1000);
      }
    },
  });
}
