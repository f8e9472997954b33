/**
 * The project: its configuration plus the user's own workflows and tools, from the file named by
 * `TOLLGATE_CONFIG`. A `.json` file holds configuration only (see project-config.ts). A `.ts`,
 * `.mts`, `.js` or `.mjs` module may also register workflows and tools: its default export is the
 * same configuration object (same keys, same meaning) with two more fields, `workflowDefinitions`
 * and `toolDefinitions`:
 *
 *   export default defineProject({
 *     groups: { finance: ['slack:T0123:U0456'] },
 *     tools: { 'http.request': { allowedHosts: ['api.example.com'] } },   // configuration, as in JSON
 *     workflowDefinitions: [refund],
 *     toolDefinitions: [crmLookup],
 *   });
 *
 * Modules written before these names existed listed their definitions as `workflows: [...]` and
 * `tools: [...]`; an array there is still read as definitions (an object is the configuration
 * section). Giving both forms of one (`tools: [...]` and `toolDefinitions`) is refused as ambiguous.
 *
 * Loaded once at start-up; a module that fails to load, or exports something else, stops
 * start-up with a message naming the file and what is wrong.
 */
import { TollgateError } from '../common/errors.ts';
import { importProjectModule } from './project-import.ts';
import { EMPTY_PROJECT_CONFIG, loadProjectConfig, parseProjectConfig, type ProjectConfig } from './project-config.ts';
import type { ToolDefinition } from '../tools/define.ts';
import type { WorkflowDefinition } from '../runtime/workflow.ts';

export interface Project {
  readonly config: ProjectConfig;
  readonly workflows: readonly WorkflowDefinition[];
  readonly tools: readonly ToolDefinition[];
}

// Any workflow or tool definition, whatever its input schema.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyWorkflow = WorkflowDefinition<any, any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyTool = ToolDefinition<any, any>;

/** What a project module exports: configuration (as in the JSON file) plus its workflow and tool definitions. */
export type ProjectModule = Partial<Record<Exclude<keyof ProjectConfig, 'workflows' | 'tools'>, unknown>> & {
  /** Per-workflow settings (as in JSON), or, the older form, the list of workflow definitions. */
  workflows?: Record<string, unknown> | readonly AnyWorkflow[];
  /** Per-tool configuration (as in JSON), or, the older form, the list of tool definitions. */
  tools?: Record<string, unknown> | readonly AnyTool[];
  workflowDefinitions?: readonly AnyWorkflow[];
  toolDefinitions?: readonly AnyTool[];
};

/** Types a project module's default export; returns it unchanged. */
export function defineProject(project: ProjectModule): ProjectModule {
  return project;
}

const MODULE = /\.(m?[jt]s)$/;

function invalid(path: string, why: string, cause?: unknown): TollgateError {
  return new TollgateError('TG_CONFIG_INVALID', `TOLLGATE_CONFIG module ${path} ${why}`, {}, cause === undefined ? undefined : { cause });
}

export async function loadProject(path: string | undefined): Promise<Project> {
  if (!path || !MODULE.test(path)) return { config: path ? loadProjectConfig(path) : EMPTY_PROJECT_CONFIG, workflows: [], tools: [] };
  let mod: { default?: unknown };
  try {
    mod = await importProjectModule(path);
  } catch (e) {
    throw invalid(path, `could not be loaded: ${(e as Error).message}`, e);
  }
  const exported = mod.default;
  if (!exported || typeof exported !== 'object') {
    throw invalid(path, 'has no default export. Write `export default defineProject({ groups, workflowDefinitions, toolDefinitions, … })`.');
  }
  const { workflowDefinitions, toolDefinitions, ...rest } = exported as ProjectModule;
  const workflows = definitions(path, rest, 'workflows', workflowDefinitions);
  const tools = definitions(path, rest, 'tools', toolDefinitions);
  const config = { ...rest };
  // An array under `workflows`/`tools` was the definitions (older form), not configuration.
  if (Array.isArray(config.workflows)) delete config.workflows;
  if (Array.isArray(config.tools)) delete config.tools;
  const bad = (list: unknown, keys: string[]) =>
    !Array.isArray(list) || list.some((x) => !x || typeof x !== 'object' || keys.some((k) => !(k in (x as object))));
  if (bad(workflows.list, ['name', 'version', 'run'])) {
    throw invalid(path, `exports \`${workflows.key}\` that are not all workflow definitions: list values made with defineWorkflow().`);
  }
  if (bad(tools.list, ['name', 'effect', 'handler'])) {
    throw invalid(path, `exports \`${tools.key}\` that are not all tool definitions: list values made with defineTool().`);
  }
  return {
    config: parseProjectConfig(config, `TOLLGATE_CONFIG module ${path}`),
    workflows: workflows.list as WorkflowDefinition[],
    tools: tools.list as ToolDefinition[],
  };
}

/**
 * A module's definitions of one kind: `<kind>Definitions`, or an array under `<kind>` (the older
 * form). Both at once cannot be told apart safely, so that is refused.
 */
function definitions(path: string, exported: Record<string, unknown>, kind: 'workflows' | 'tools', named: unknown): { list: unknown; key: string } {
  const old = exported[kind];
  const newName = kind === 'workflows' ? 'workflowDefinitions' : 'toolDefinitions';
  if (named !== undefined && Array.isArray(old)) {
    throw invalid(
      path,
      `exports both \`${kind}: [...]\` and \`${newName}\`. List the definitions in \`${newName}\` only; \`${kind}\` is the configuration section (an object by name, as in the JSON file).`,
    );
  }
  if (named !== undefined) return { list: named, key: newName };
  return { list: Array.isArray(old) ? old : [], key: kind };
}
