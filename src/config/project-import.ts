/**
 * Imports the project module named by TOLLGATE_CONFIG (src/config/project.ts reads what it exports).
 *
 * Run from the sources (tsx, vitest) a plain import does: TypeScript is understood already. The
 * compiled Tollgate (dist/, plain node) first teaches Node, once per process, what such a module
 * needs, and only when one is loaded, so no other command pays for it:
 * - tsx, for a TypeScript module (`tollgate.config.ts`);
 * - a resolve hook (project-import-hooks.ts) sending the module's imports of Tollgate's own
 *   sources (`../src/runtime/workflow.ts`, as docs/workflows.md writes them) to their compiled copies in
 *   dist/. The module and the runtime then share one copy of every class: a NonRetriableError a
 *   step throws is the class the executor checks for, not a second one from the sources.
 */
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';

/** Running from dist/ (compiled JavaScript) rather than from the TypeScript sources. */
const COMPILED = !import.meta.url.endsWith('.ts');
const TYPESCRIPT = /\.[mc]?ts$/;

let tsxRegistered = false;
let hooksRegistered = false;

export async function importProjectModule(file: string): Promise<{ default?: unknown }> {
  if (COMPILED) {
    if (TYPESCRIPT.test(file) && !tsxRegistered) {
      tsxRegistered = true;
      const { register: registerTsx } = await import('tsx/esm/api');
      registerTsx();
    }
    // After tsx: the hook registered last runs first, and asks tsx (then Node) to resolve.
    if (!hooksRegistered) {
      hooksRegistered = true;
      register(new URL('./project-import-hooks.js', import.meta.url), {
        data: { root: new URL('../../../', import.meta.url).href, dist: new URL('../../', import.meta.url).href },
      });
    }
  }
  return (await import(pathToFileURL(file).href)) as { default?: unknown };
}
