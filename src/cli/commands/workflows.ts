/**
 * `tollgate workflows`: the registered workflows and their inputs, read from the project alone
 * (no database is opened).
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerWorkflowCommands(program: Command, { io, env }: CliContext): void {
  program
    .command('workflows')
    .description('List workflows and their inputs.')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const [{ loadConfig }, { loadProject }, { buildRegistry }] = await Promise.all([
        import('../../config/config.ts'),
        import('../../config/project.ts'),
        import('../../app.ts'),
      ]);
      const config = loadConfig(env);
      const registry = buildRegistry(await loadProject(config.projectConfigPath));
      const list = registry.latest().map((w) => ({
        name: w.name,
        version: w.version,
        description: w.description,
        input: describeInput(w.input),
      }));
      if (opts.json) return io.out(JSON.stringify(list, null, 2));
      for (const w of list) {
        io.out(`${w.name} (v${w.version}): ${w.description}`);
        for (const f of w.input) io.out(`    ${f.name}${f.required ? '' : '?'}  ${f.description ?? ''}`.trimEnd());
      }
    });
}

export function describeInput(schema: unknown): { name: string; required: boolean; description?: string }[] {
  const shape = (schema as { shape?: Record<string, { isOptional?: () => boolean; description?: string }> }).shape;
  if (!shape) return [];
  return Object.entries(shape).map(([name, field]) => ({
    name,
    required: !(field.isOptional?.() ?? false),
    description: field.description,
  }));
}
