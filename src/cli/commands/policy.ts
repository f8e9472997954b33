/**
 * `tollgate policy test <workflow> key=value …` and `tollgate policy diff <old> <new>`: approval
 * policies' dry run (docs/policies.md). Read from the project configuration alone: no database is
 * opened and nothing is started.
 */
import type { Command } from 'commander';
import { TollgateError } from '../../common/errors.ts';
import type { EffectivePolicy } from '../../approvals/policies.ts';
import type { ProjectConfig } from '../../config/project-config.ts';
import type { WorkflowRegistry } from '../../runtime/registry.ts';
import type { CliContext } from '../context.ts';

export function registerPolicyCommands(program: Command, ctx: CliContext): void {
  const policy = program.command('policy').description('Approval policies: test one against some parameters, or compare two configurations.');
  registerPolicyTest(policy, ctx);
  registerPolicyDiff(policy, ctx);
}

/** The policy that applies to `workflow` in `project`: configured, or the built-in workflow's default. */
async function policyOf(project: ProjectConfig, workflow: string): Promise<EffectivePolicy | undefined> {
  const [{ workflowPolicy }, { BUILTIN_DEFAULT_POLICIES }] = await Promise.all([import('../../approvals/policies.ts'), import('../../workflows/policies.ts')]);
  return workflowPolicy(project, workflow, BUILTIN_DEFAULT_POLICIES[workflow]?.(project));
}

/** Each value read as the workflow's input schema reads that field (`amount=5000` a number, `environment= PROD ` trimmed); as typed otherwise. */
function readParams(registry: WorkflowRegistry, workflow: string, raw: Record<string, string>): Record<string, unknown> {
  const def = registry.latest().find((w) => w.name === workflow);
  const shape = (def?.input as { shape?: Record<string, { safeParse?: (v: unknown) => { success: boolean; data?: unknown } }> } | undefined)?.shape;
  return Object.fromEntries(
    Object.entries(raw).map(([k, v]) => {
      const parsed = shape?.[k]?.safeParse?.(v);
      return [k, parsed?.success ? parsed.data : v];
    }),
  );
}

function registerPolicyTest(policy: Command, { io, lazy }: CliContext): void {
  policy
    .command('test')
    .description('Show which rule applies to these parameters, who may approve, the quorum and the deadline; starts nothing.')
    .argument('<workflow>')
    .argument('[params...]', 'parameters as key=value')
    .option('--json', 'print JSON')
    .action(async (workflow: string, params: string[], opts: { json?: boolean }) => {
      const { config } = await lazy(true);
      const [{ loadProject }, { buildRegistry }, { parseKeyValues }, { explainRule, formatExplained }] = await Promise.all([
        import('../../config/project.ts'),
        import('../../app.ts'),
        import('../../intents/command.ts'),
        import('../../approvals/policies-dry-run.ts'),
      ]);
      const project = await loadProject(config.projectConfigPath);
      const registry = buildRegistry(project);
      const found = await policyOf(project.config, workflow);
      if (!found) {
        const known = registry.names();
        if (!known.includes(workflow)) {
          throw new TollgateError('TG_WORKFLOW_UNKNOWN', `No workflow "${workflow}" is registered (workflows: ${known.join(', ')}).`);
        }
        throw new TollgateError(
          'TG_USAGE',
          `Workflow ${workflow} has no approval policy: its gates name their approvers in code. Add policies.${workflow} to the TOLLGATE_CONFIG file to give it one.`,
        );
      }
      const input = readParams(registry, workflow, parseKeyValues(params));
      const explained = explainRule(project.config, found, input);
      io.out(opts.json ? JSON.stringify({ input, ...explained }, null, 2) : formatExplained(explained).join('\n'));
    });
}

function registerPolicyDiff(policy: Command, { io }: CliContext): void {
  policy
    .command('diff')
    .description('List the sample inputs whose approval outcome changes between two project configuration files.')
    .argument('<old>', 'the project configuration before (JSON or a project module)')
    .argument('<new>', 'the project configuration after')
    .option('--json', 'print JSON')
    .action(async (oldPath: string, newPath: string, opts: { json?: boolean }) => {
      const [{ loadProject }, { diffPolicies, formatInput, outcomeLine }, { BUILTIN_DEFAULT_POLICIES }] = await Promise.all([
        import('../../config/project.ts'),
        import('../../approvals/policies-dry-run.ts'),
        import('../../workflows/policies.ts'),
      ]);
      const before = (await loadProject(oldPath)).config;
      const after = (await loadProject(newPath)).config;
      const workflows = [
        ...new Set([...Object.keys(BUILTIN_DEFAULT_POLICIES), ...Object.keys(before.policies ?? {}), ...Object.keys(after.policies ?? {})]),
      ].sort();
      const report = [];
      for (const workflow of workflows) {
        const [b, a] = [await policyOf(before, workflow), await policyOf(after, workflow)];
        if (!b || !a) {
          report.push({
            workflow,
            note: `is configured in ${b ? oldPath : newPath} only: its gates elsewhere name approvers in code`,
            samples: 0,
            changes: [],
          });
          continue;
        }
        report.push({ workflow, ...diffPolicies({ project: before, policy: b }, { project: after, policy: a }) });
      }
      if (opts.json) return io.out(JSON.stringify(report, null, 2));
      for (const r of report) {
        if ('note' in r) {
          io.out(`${r.workflow}: policy ${r.note}`);
          continue;
        }
        io.out(`${r.workflow}: ${r.changes.length} of ${r.samples} sample inputs change outcome`);
        for (const c of r.changes) io.out(`  ${formatInput(c.input)}: ${outcomeLine(c.before)} -> ${outcomeLine(c.after)}`);
      }
    });
}
