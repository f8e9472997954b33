/**
 * Module resolution hooks (node:module `register`), installed by project-import.ts when the
 * compiled Tollgate loads a project module: an import of one of Tollgate's TypeScript sources
 * (`<root>/src|bots|jobs/….ts`) resolves to its compiled copy (`<root>/dist/…/….js`) when there is
 * one, so the project module uses the very modules the running Tollgate uses. Anything else
 * resolves as it would without this hook.
 */
import { existsSync } from 'node:fs';
import type { InitializeHook, ResolveHook } from 'node:module';
import { fileURLToPath } from 'node:url';

const COMPILED_FOLDERS = /^(?:src|bots|jobs)\/.*\.ts$/;

let root = '';
let dist = '';

export const initialize: InitializeHook<{ root: string; dist: string }> = (data) => {
  root = data.root;
  dist = data.dist;
};

export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  const resolved = await nextResolve(specifier, context);
  if (!resolved.url.startsWith(root)) return resolved;
  const inRoot = resolved.url.slice(root.length);
  if (!COMPILED_FOLDERS.test(inRoot)) return resolved;
  const compiled = `${dist}${inRoot.slice(0, -'.ts'.length)}.js`;
  return existsSync(fileURLToPath(compiled)) ? { url: compiled, format: 'module', shortCircuit: true } : resolved;
};
