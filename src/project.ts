/**
 * The project: its configuration plus the user's own workflows and tools, from the file named by
 * `TOLLGATE_CONFIG`. A `.json` file holds configuration only (see project-config.ts). A `.ts`,
 * `.mts`, `.js` or `.mjs` module may also register workflows and tools: its default export is the
 * same configuration object with two more fields, `workflows` and `tools`:
 *
 *   export default defineProject({
 *     groups: { finance: ['slack:T0123:U0456'] },
 *     workflows: [refund],
 *     tools: [crmLookup],
 *   });
 *
 * Loaded once at start-up; a module that fails to load, or exports something else, stops
 * start-up with a message naming the file and what is wrong.
 */
import { pathToFileURL } from 'node:url';
import { TollgateError } from './errors.ts';
import { EMPTY_PROJECT_CONFIG, loadProjectConfig, parseProjectConfig, type ProjectConfig } from './project-config.ts';
import type { ToolDefinition } from './tools/define.ts';
import type { WorkflowDefinition } from './runtime/workflow.ts';

export interface Project {
  readonly config: ProjectConfig;
  readonly workflows: readonly WorkflowDefinition[];
  readonly tools: readonly ToolDefinition[];
}

/** What a project module exports: configuration (as in the JSON file) plus workflows and tools. */
export type ProjectModule = Partial<Record<keyof ProjectConfig, unknown>> & {
  // Any workflow or tool definition, whatever its input schema.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  workflows?: readonly WorkflowDefinition<any, any>[];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  tools?: readonly ToolDefinition<any, any>[];
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
    mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
  } catch (e) {
    throw invalid(path, `could not be loaded: ${(e as Error).message}`, e);
  }
  const exported = mod.default;
  if (!exported || typeof exported !== 'object') {
    throw invalid(path, 'has no default export. Write `export default defineProject({ groups, workflows, tools, … })`.');
  }
  const { workflows = [], tools = [], ...config } = exported as ProjectModule;
  const bad = (list: unknown, keys: string[]) =>
    !Array.isArray(list) || list.some((x) => !x || typeof x !== 'object' || keys.some((k) => !(k in (x as object))));
  if (bad(workflows, ['name', 'version', 'run'])) {
    throw invalid(path, 'exports `workflows` that are not all workflow definitions: list values made with defineWorkflow().');
  }
  if (bad(tools, ['name', 'effect', 'handler'])) {
    throw invalid(path, 'exports `tools` that are not all tool definitions: list values made with defineTool().');
  }
  return {
    config: parseProjectConfig(config, `TOLLGATE_CONFIG module ${path}`),
    workflows: workflows as WorkflowDefinition[],
    tools: tools as ToolDefinition[],
  };
}
