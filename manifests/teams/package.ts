/**
 * Builds the Teams app package a tenant admin uploads: manifest.json (placeholders filled from the
 * environment, validated against the vendored schema), color.png and outline.png at the zip root.
 *
 *   TEAMS_APP_ID=<guid> MicrosoftAppId=<guid> npm run teams:package [-- --out <file>]
 *
 * Reads: every `${{NAME}}` placeholder in manifest.json (today TEAMS_APP_ID and MicrosoftAppId), and
 * the optional TEAMS_VALID_DOMAINS (comma-separated host names added to validDomains).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import ajvDraft04 from 'ajv-draft-04';
import ajvFormats from 'ajv-formats';
import { zipSync } from 'fflate';
import { decodePng, readPngHeader } from './png.ts';

// Both are CommonJS: module.exports is the class/plugin and .default the same, which is what
// TypeScript (NodeNext) sees on the default import.
const Ajv = ajvDraft04.default;
const addFormats = ajvFormats.default;

export const TEAMS_DIR = import.meta.dirname;
export const DEFAULT_OUT = path.join(TEAMS_DIR, 'build', 'tollgate-teams.zip');
export const SCHEMA_FILE = path.join('schema', 'MicrosoftTeams.schema.json');

type Env = Record<string, string | undefined>;
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Manifest = { [key: string]: Json };

/** Everything wrong found by a step, each a one-sentence problem. */
export class TeamsPackageError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'TeamsPackageError';
  }
}

const PLACEHOLDER = /\$\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

const HINTS: Record<string, string> = {
  TEAMS_APP_ID:
    "set it to the Teams app's id, a GUID you create once (with uuidgen, say) and keep for every version of the app: `TEAMS_APP_ID=<guid> npm run teams:package`",
  MicrosoftAppId:
    "set it to your Azure Bot's Microsoft App ID (a GUID, under the bot's Configuration in the Azure portal; the same value the server reads): `MicrosoftAppId=<guid> npm run teams:package`",
};

/** Replaces each `${{NAME}}` in the manifest's strings with env.NAME; refuses when one is unset. */
export function fillPlaceholders(template: Manifest, env: Env): Manifest {
  const missing = new Set<string>();
  const fill = (v: Json): Json => {
    if (typeof v === 'string') {
      return v.replace(PLACEHOLDER, (_, name: string) => {
        const value = env[name]?.trim();
        if (!value) missing.add(name);
        return value ?? '';
      });
    }
    if (Array.isArray(v)) return v.map(fill);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)]));
    return v;
  };
  const filled = fill(template) as Manifest;
  if (missing.size > 0) {
    throw new TeamsPackageError(
      [...missing].map((name) => `${name} is not set: ${HINTS[name] ?? `set ${name} in the environment: \`${name}=<value> npm run teams:package\``}.`),
    );
  }
  return filled;
}

/** Adds TEAMS_VALID_DOMAINS (comma-separated host names, no scheme or path) to validDomains. */
export function addValidDomains(manifest: Manifest, env: Env): Manifest {
  const extra = (env.TEAMS_VALID_DOMAINS ?? '')
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean);
  const bad = extra.filter((d) => d.includes('/') || d.includes(':'));
  if (bad.length > 0) {
    throw new TeamsPackageError(
      bad.map((d) => `TEAMS_VALID_DOMAINS holds "${d}": give host names only, without scheme, port or path, such as TEAMS_VALID_DOMAINS=tollgate.example.com.`),
    );
  }
  const current = Array.isArray(manifest.validDomains) ? manifest.validDomains : [];
  return { ...manifest, validDomains: [...new Set([...current, ...extra])] };
}

/** Validates against the vendored schema; returns one "path: message" per error (empty when valid). */
export function validateManifest(manifest: unknown, schema: Record<string, unknown>): string[] {
  const draft = String(schema.$schema ?? '');
  if (!draft.includes('draft-04')) {
    throw new Error(`The vendored Teams schema declares ${draft || 'no $schema'}; package.ts validates draft-04 schemas (Ajv's ajv-draft-04).`);
  }
  // strictTypes: false as in Microsoft's own validator (@microsoft/app-manifest): the schema puts
  // "additionalProperties"/"minItems" where no "type" is given, which strict mode warns about.
  // ajv-formats: the schema uses format "uri".
  const ajv = new Ajv({ allErrors: true, strictTypes: false });
  addFormats(ajv);
  const validate = ajv.compile(schema);
  if (validate(manifest)) return [];
  return (validate.errors ?? []).map((e) => {
    const at = e.instancePath || '';
    if (e.keyword === 'required') return `${at}/${String(e.params.missingProperty)}: is required but missing`;
    if (e.keyword === 'additionalProperties') return `${at}/${String(e.params.additionalProperty)}: is not a property the schema allows here`;
    const detail = e.keyword === 'enum' ? ` (${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')})` : '';
    return `${at || '/'}: ${e.message ?? e.keyword}${detail}`;
  });
}

export interface IconCheck {
  files: Record<string, Uint8Array>;
  problems: string[];
}

/** Reads the icons the manifest names (next to manifest.json) and checks Teams' size and alpha rules. */
export function checkIcons(manifest: Manifest, dir: string): IconCheck {
  const icons = (manifest.icons ?? {}) as Record<string, Json>;
  const files: Record<string, Uint8Array> = {};
  const problems: string[] = [];
  const rules = [
    { key: 'color', size: 192, what: 'a 192×192 full-colour PNG' },
    { key: 'outline', size: 32, what: 'a 32×32 PNG, white on a transparent background' },
  ];
  for (const { key, size, what } of rules) {
    const name = icons[key];
    if (typeof name !== 'string') continue; // the schema check reports it
    if (path.basename(name) !== name) {
      problems.push(`icons.${key} is "${name}": name a file next to manifest.json (it goes at the zip root), such as "${path.basename(name)}".`);
      continue;
    }
    const file = path.join(dir, name);
    if (!existsSync(file)) {
      problems.push(`icons.${key}: ${file} does not exist; it must be ${what}.`);
      continue;
    }
    const bytes = readFileSync(file);
    let header;
    try {
      header = readPngHeader(bytes);
    } catch {
      problems.push(`icons.${key}: ${name} is not a PNG file; it must be ${what}.`);
      continue;
    }
    if (header.width !== size || header.height !== size) {
      problems.push(`icons.${key}: ${name} is ${header.width}×${header.height}; it must be ${what}.`);
    }
    if (key === 'outline') {
      if (!header.hasAlpha) {
        problems.push(`icons.outline: ${name} has no alpha channel (PNG colour type ${header.colorType}); it must be ${what}.`);
      } else if (header.bitDepth === 8 && header.colorType === 6 && header.interlace === 0) {
        const img = decodePng(bytes);
        let transparent = 0;
        let coloured = 0;
        for (let i = 0; i < img.pixels.length; i += 4) {
          const [r, g, b, a] = img.pixels.subarray(i, i + 4) as unknown as [number, number, number, number];
          if (a === 0) transparent++;
          else if (r < 240 || g < 240 || b < 240) coloured++;
        }
        if (coloured > 0) problems.push(`icons.outline: ${name} has ${coloured} visible pixels that are not white; it must be ${what}.`);
        if (transparent === 0) problems.push(`icons.outline: ${name} has no transparent pixel; it must be ${what}.`);
      }
    }
    files[name] = bytes;
  }
  return { files, problems };
}

export interface BuildOptions {
  env: Env;
  /** Where to write the zip; default manifests/teams/build/tollgate-teams.zip. */
  out?: string;
  /** The folder holding manifest.json, the icons and schema/; default this file's folder. */
  dir?: string;
}

export interface BuiltPackage {
  out: string;
  manifest: Manifest;
  /** The zip's entries, in order. */
  entries: string[];
}

/** Fills, validates and zips; throws TeamsPackageError listing every problem found. */
export function buildTeamsPackage({ env, out = DEFAULT_OUT, dir = TEAMS_DIR }: BuildOptions): BuiltPackage {
  const template = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const schema = JSON.parse(readFileSync(path.join(dir, SCHEMA_FILE), 'utf8')) as Record<string, unknown>;
  const manifest = addValidDomains(fillPlaceholders(template, env), env);
  const icons = checkIcons(manifest, dir);
  const problems = [...validateManifest(manifest, schema), ...icons.problems];
  if (problems.length > 0) throw new TeamsPackageError(problems);

  const mtime = new Date(2000, 0, 1); // fixed, so the same inputs give the same zip
  const entries: Record<string, [Uint8Array, { mtime: Date }]> = {
    'manifest.json': [Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), { mtime }],
  };
  for (const [name, bytes] of Object.entries(icons.files)) entries[name] = [bytes, { mtime }];
  const target = path.resolve(out);
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, zipSync(entries, { level: 9 }));
  return { out: target, manifest, entries: Object.keys(entries) };
}

/** The CLI: `[--out <file>]`; returns the exit code. */
export function main(argv: string[], env: Env, print = console.log, fail = console.error): number {
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--out' && argv[i + 1]) out = argv[++i];
    else if (arg.startsWith('--out=')) out = arg.slice('--out='.length);
    else {
      fail(`Unknown argument "${arg}": the only option is --out <file>.`);
      return 2;
    }
  }
  try {
    const built = buildTeamsPackage({ env, ...(out ? { out } : {}) });
    print(
      `Wrote ${built.out} (${built.entries.join(', ')}); upload it in the Teams admin center (Teams apps > Manage apps > Upload new app) or the Teams Developer Portal.`,
    );
    return 0;
  } catch (e) {
    if (!(e instanceof TeamsPackageError)) throw e;
    for (const p of e.problems) fail(p);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2), process.env);
}
