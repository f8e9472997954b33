/**
 * The Teams app package (manifests/teams/): built from the committed files with the two ids set,
 * validated against the vendored schema, icons Teams accepts, and the bot's command lists equal to
 * the command grammar (src/intents/command.ts) in every scope.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, describe, expect, it } from 'vitest';
import { type Command, parseCommand } from '../src/intents/command.ts';
import { buildTeamsPackage, checkIcons, main, type Manifest, TEAMS_DIR, TeamsPackageError, validateManifest } from '../manifests/teams/package.ts';
import { decodePng, encodePng, readPngHeader } from '../manifests/teams/png.ts';

const root = path.resolve(import.meta.dirname, '..');
const ENV = { TEAMS_APP_ID: '0b6a3c1e-7d2f-4a8b-9c0d-1e2f3a4b5c6d', MicrosoftAppId: 'f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b' };
const schema = JSON.parse(readFileSync(path.join(TEAMS_DIR, 'schema', 'MicrosoftTeams.schema.json'), 'utf8')) as Record<string, unknown>;

const temps: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-teams-'));
  temps.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

/** The files a clean checkout has (manifest, icons, vendored schema), copied; no build/ output. */
function checkoutCopy(edit?: (m: Manifest) => void): string {
  const dir = tempDir();
  for (const f of ['manifest.json', 'color.png', 'outline.png', 'schema']) cpSync(path.join(TEAMS_DIR, f), path.join(dir, f), { recursive: true });
  if (edit) {
    const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
    edit(m);
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
  }
  return dir;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof TeamsPackageError) return e.problems;
    throw e;
  }
  throw new Error('expected a TeamsPackageError, but the package was built');
}

function built() {
  const dir = checkoutCopy();
  const out = path.join(dir, 'out', 'tollgate-teams.zip');
  const result = buildTeamsPackage({ env: ENV, dir, out });
  return { dir, out, result, zip: unzipSync(readFileSync(out)) };
}

/** One sample per command of the grammar; keyed by Command kind, so a new kind fails typecheck here. */
const GRAMMAR: Record<Exclude<Command['kind'], 'text'>, string> = {
  run: 'run purchase-order amount=1200 reason="new laptops"',
  status: 'status run_01jabc',
  runs: 'runs',
  approvals: 'approvals',
  retry: 'retry run_01jabc',
  cancel: 'cancel run_01jabc',
  workflows: 'workflows',
  help: 'help',
  delegate: 'delegate teams:tenant-1:oid-2 until 2026-12-24',
};

describe('Teams app package', () => {
  it('builds from a clean checkout with TEAMS_APP_ID and MicrosoftAppId set', () => {
    const { out, result } = built();
    expect(result.out).toBe(out);
    expect(existsSync(out)).toBe(true);
    expect(result.entries).toEqual(['manifest.json', 'color.png', 'outline.png']);
  });

  it('zips exactly manifest.json, color.png and outline.png; the manifest validates and carries the filled ids', () => {
    const { dir, zip } = built();
    expect(Object.keys(zip).sort()).toEqual(['color.png', 'manifest.json', 'outline.png']);
    const text = new TextDecoder().decode(zip['manifest.json']);
    expect(text).not.toContain('${{');
    const manifest = JSON.parse(text) as Manifest & { bots: { botId: string }[] };
    expect(validateManifest(manifest, schema)).toEqual([]);
    expect(manifest.id).toBe(ENV.TEAMS_APP_ID);
    expect(manifest.bots[0]?.botId).toBe(ENV.MicrosoftAppId);
    expect(manifest.manifestVersion).toBe((schema as { properties: { manifestVersion: { const: string } } }).properties.manifestVersion.const);
    expect(Buffer.from(zip['color.png'] as Uint8Array).equals(readFileSync(path.join(dir, 'color.png')))).toBe(true);
    expect(Buffer.from(zip['outline.png'] as Uint8Array).equals(readFileSync(path.join(dir, 'outline.png')))).toBe(true);
    // The committed template keeps the placeholders: no real ids in the repository.
    const template = JSON.parse(readFileSync(path.join(TEAMS_DIR, 'manifest.json'), 'utf8')) as Manifest & { bots: { botId: string }[] };
    expect(template.id).toBe('${{TEAMS_APP_ID}}');
    expect(template.bots[0]?.botId).toBe('${{MicrosoftAppId}}');
  });

  it('ships a 192×192 colour icon and a 32×32 outline with alpha, white on transparent', () => {
    const { zip } = built();
    const color = readPngHeader(zip['color.png'] as Uint8Array);
    expect([color.width, color.height]).toEqual([192, 192]);
    const outline = readPngHeader(zip['outline.png'] as Uint8Array);
    expect([outline.width, outline.height, outline.hasAlpha]).toEqual([32, 32, true]);
    const px = decodePng(zip['outline.png'] as Uint8Array).pixels;
    const alphas = px.filter((_, i) => i % 4 === 3);
    expect(alphas).toContain(0);
    expect(alphas).toContain(255);
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] !== 0) expect([px[i], px[i + 1], px[i + 2]]).toEqual([255, 255, 255]);
    }
  });

  it('refuses icons of the wrong size, and an outline without alpha', () => {
    const dir = checkoutCopy();
    writeFileSync(path.join(dir, 'color.png'), encodePng({ width: 96, height: 96, channels: 3, pixels: new Uint8Array(96 * 96 * 3) }));
    writeFileSync(path.join(dir, 'outline.png'), encodePng({ width: 32, height: 32, channels: 3, pixels: new Uint8Array(32 * 32 * 3).fill(255) }));
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
    const { problems } = checkIcons(manifest, dir);
    expect(problems).toEqual([
      'icons.color: color.png is 96×96; it must be a 192×192 full-colour PNG.',
      'icons.outline: outline.png has no alpha channel (PNG colour type 2); it must be a 32×32 PNG, white on a transparent background.',
    ]);
    expect(problemsOf(() => buildTeamsPackage({ env: ENV, dir, out: path.join(dir, 'x.zip') }))).toEqual(problems);
    expect(existsSync(path.join(dir, 'x.zip'))).toBe(false);
  });

  it('lists exactly the eight commands of the grammar in every scope of the bot', () => {
    const { result } = built();
    const bot = (result.manifest.bots as { scopes: string[]; commandLists: { scopes: string[]; commands: { title: string; description: string }[] }[] }[])[0]!;
    expect([...bot.scopes].sort()).toEqual(['groupChat', 'personal', 'team']);
    for (const scope of bot.scopes) {
      const lists = bot.commandLists.filter((l) => l.scopes.includes(scope));
      expect(lists, scope).toHaveLength(1);
      const titles = lists[0]!.commands.map((c) => c.title);
      expect([...titles].sort(), scope).toEqual(Object.keys(GRAMMAR).sort());
      for (const c of lists[0]!.commands) {
        // The title is the grammar's verb: the parser gives that command, not free text.
        expect(parseCommand(GRAMMAR[c.title as keyof typeof GRAMMAR]).kind).toBe(c.title);
        expect(c.description.length).toBeGreaterThan(0);
      }
    }
  });

  it('refuses a missing MicrosoftAppId with one sentence naming it, and writes nothing', () => {
    const dir = checkoutCopy();
    const out = path.join(dir, 'x.zip');
    for (const env of [{ TEAMS_APP_ID: ENV.TEAMS_APP_ID }, { ...ENV, MicrosoftAppId: '  ' }]) {
      const problems = problemsOf(() => buildTeamsPackage({ env, dir, out }));
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^MicrosoftAppId is not set: set it to your Azure Bot's Microsoft App ID .*MicrosoftAppId=<guid> npm run teams:package`\.$/);
      expect(problems[0]!.match(/\. /g)).toBeNull(); // one sentence
    }
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a description.short over 80 characters with the schema path', () => {
    const dir = checkoutCopy((m) => {
      (m.description as { short: string }).short = 'x'.repeat(81);
    });
    expect(problemsOf(() => buildTeamsPackage({ env: ENV, dir, out: path.join(dir, 'x.zip') }))).toEqual([
      '/description/short: must NOT have more than 80 characters',
    ]);
    expect(existsSync(path.join(dir, 'x.zip'))).toBe(false);
  });

  it('refuses a manifest without a required field, naming its path', () => {
    const dir = checkoutCopy((m) => {
      delete m.accentColor;
      delete (m.developer as Record<string, unknown>).privacyUrl;
    });
    expect(problemsOf(() => buildTeamsPackage({ env: ENV, dir, out: path.join(dir, 'x.zip') })).sort()).toEqual([
      '/accentColor: is required but missing',
      '/developer/privacyUrl: is required but missing',
    ]);
  });

  it('adds TEAMS_VALID_DOMAINS to validDomains and refuses a URL there', () => {
    const dir = checkoutCopy();
    const out = path.join(dir, 'x.zip');
    const { manifest } = buildTeamsPackage({ env: { ...ENV, TEAMS_VALID_DOMAINS: 'tollgate.example.com, *.example.org' }, dir, out });
    expect(manifest.validDomains).toEqual(['tollgate.example.com', '*.example.org']);
    expect(problemsOf(() => buildTeamsPackage({ env: { ...ENV, TEAMS_VALID_DOMAINS: 'https://tollgate.example.com' }, dir, out }))).toEqual([
      'TEAMS_VALID_DOMAINS holds "https://tollgate.example.com": give host names only, without scheme, port or path, such as TEAMS_VALID_DOMAINS=tollgate.example.com.',
    ]);
  });

  it('the CLI prints where it wrote the zip, or each problem and exit code 1', () => {
    const out = path.join(tempDir(), 'cli.zip');
    const printed: string[] = [];
    const failed: string[] = [];
    expect(
      main(
        ['--out', out],
        ENV,
        (s) => printed.push(s),
        (s) => failed.push(s),
      ),
    ).toBe(0);
    expect(printed).toEqual([expect.stringContaining(`Wrote ${out} (manifest.json, color.png, outline.png)`)]);
    expect(failed).toEqual([]);
    expect(
      main(
        [`--out=${out}`],
        { TEAMS_APP_ID: ENV.TEAMS_APP_ID },
        (s) => printed.push(s),
        (s) => failed.push(s),
      ),
    ).toBe(1);
    expect(failed).toEqual([expect.stringMatching(/^MicrosoftAppId is not set: /)]);
  });

  it('npm run teams:package runs package.ts as a script', () => {
    const out = path.join(tempDir(), 'script.zip');
    const script = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['teams:package'];
    expect(script).toBe('tsx manifests/teams/package.ts');
    const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
    const ok = spawnSync(tsx, ['manifests/teams/package.ts', '--out', out], { cwd: root, env: { PATH: process.env.PATH, ...ENV }, encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`Wrote ${out}`);
    expect(Object.keys(unzipSync(readFileSync(out))).sort()).toEqual(['color.png', 'manifest.json', 'outline.png']);
    const missing = spawnSync(tsx, ['manifests/teams/package.ts', '--out', out], {
      cwd: root,
      env: { PATH: process.env.PATH, TEAMS_APP_ID: ENV.TEAMS_APP_ID },
      encoding: 'utf8',
    });
    expect(missing.status).toBe(1);
    expect(missing.stderr.trim()).toMatch(/^MicrosoftAppId is not set: [^\n]*\.$/);
  });
});
