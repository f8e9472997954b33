/**
 * The layering ARCHITECTURE.md promises, checked on the source: src/ is platform-neutral. Only the
 * composition root (src/app.ts) may import from bots/, and only the adapter list (bots/index.ts);
 * nothing in src/ imports a chat SDK; one platform's folder never imports another's (what both
 * need lives in src/chat or src/views).
 *
 * The same rules, and the rest of the layering, are kept by dependency-cruiser (.dependency-cruiser.cjs)
 * and ESLint (eslint.config.js) in `npm run lint`. The second half of this file shows each of those
 * rules failing on a deliberate violation (test/fixtures/lint-violations/, which the real lint skips),
 * so that a rule that silently stops matching (a typo in a path, a tool upgrade) fails a test.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { cruise, type ICruiseResult, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

function imports(file: string): string[] {
  const text = readFileSync(path.join(root, file), 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1] as string);
}

describe('layering', () => {
  it('src/ imports nothing from bots/ except src/app.ts, which sees only the adapter list', () => {
    const offenders: string[] = [];
    for (const file of sources('src')) {
      for (const spec of imports(file)) {
        if (!spec.startsWith('.')) continue;
        const target = path.relative(root, path.resolve(root, path.dirname(file), spec));
        if (!target.startsWith('bots')) continue;
        if (file === path.join('src', 'app.ts') && target === path.join('bots', 'index.ts')) continue;
        offenders.push(`${file} imports ${target}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('src/ imports no chat SDK', () => {
    const offenders = sources('src').flatMap((file) =>
      imports(file)
        .filter((s) => /^(@slack\/|botbuilder)/.test(s))
        .map((s) => `${file} imports ${s}`),
    );
    expect(offenders).toEqual([]);
  });

  it('no platform folder in bots/ imports another one', () => {
    const offenders: string[] = [];
    for (const file of sources('bots')) {
      const own = file.split(path.sep)[1];
      for (const spec of imports(file)) {
        if (!spec.startsWith('.')) continue;
        const target = path.relative(root, path.resolve(root, path.dirname(file), spec)).split(path.sep);
        if (target[0] === 'bots' && target.length > 2 && own && file.split(path.sep).length > 2 && target[1] !== own)
          offenders.push(`${file} imports ${target.join('/')}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});

const fixtures = path.join(root, 'test', 'fixtures', 'lint-violations');

async function depcruise(baseDir: string): Promise<IViolation[]> {
  const options = await extractDepcruiseOptions(path.join(root, '.dependency-cruiser.cjs'));
  const { output } = await cruise(['src', 'bots', 'jobs'], { ...options, baseDir, validate: true });
  return (output as ICruiseResult).summary.violations;
}

async function ruleNames(): Promise<string[]> {
  const options = await extractDepcruiseOptions(path.join(root, '.dependency-cruiser.cjs'));
  return (options.ruleSet?.forbidden ?? []).map((r) => r.name ?? '');
}

describe('layering, by dependency-cruiser', () => {
  it('the real tree keeps the three rules above (depcruise resolves every import, dynamic ones too)', async () => {
    const kept = ['src-not-to-bots', 'app-sees-only-adapter-list', 'src-no-chat-sdk', 'no-cross-platform'];
    const found = (await depcruise(root)).filter((v) => kept.includes(v.rule.name)).map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`);
    expect(found).toEqual([]);
  });

  it('every rule of .dependency-cruiser.cjs fires on its deliberate violation, and none on the ok- files', async () => {
    const violations = await depcruise(fixtures);
    const seen = violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to.replace(/^.*node_modules\//, 'node_modules/')}`);
    // Every rule has a fixture: a new rule without one fails here.
    for (const name of await ruleNames())
      expect(
        seen.filter((s) => s.startsWith(`${name}: `)),
        name,
      ).not.toEqual([]);
    expect(seen).toEqual(
      expect.arrayContaining([
        'no-circular: src/server/a.ts -> src/server/b.ts',
        'src-not-to-bots: src/console/slack-link.ts -> bots/slack/name.ts',
        'app-sees-only-adapter-list: src/app.ts -> bots/slack/name.ts',
        'no-cross-platform: bots/teams/reuse.ts -> bots/slack/name.ts',
        'bots-only-chat-entry: bots/slack/intake.ts -> src/chat/names.ts',
        'bots-views-types-only: bots/slack/render.ts -> src/views/run-view.ts',
        'bots-no-pg: bots/slack/pool.ts -> node_modules/pg/esm/index.mjs',
        'src-no-chat-sdk: src/chat/names.ts -> node_modules/@slack/bolt/dist/index.js',
        'pg-value-only-in-db: src/tools/pg-tool.ts -> node_modules/pg/esm/index.mjs',
        'db-imports-only-db-and-common: src/db/settings.ts -> src/runtime/retry.ts',
        'db-type-imports-from-above: src/db/settings.ts -> src/views/run-view.ts',
        'common-imports-only-common: src/common/ids.ts -> src/db/pool.ts',
        'runtime-no-chat: src/runtime/retry.ts -> src/chat/names.ts',
        'core-not-to-higher: src/audit/console-link.ts -> src/console/paths.ts',
        'views-chat-not-to-higher: src/chat/worker-user.ts -> src/worker/name.ts',
        'views-not-to-chat: src/views/run-view.ts -> src/chat/names.ts',
        'edges-not-to-bots: jobs/deliver.ts -> bots/slack/name.ts',
        'edges-not-to-app: src/server/boot.ts -> src/app.ts',
        'cli-loads-app-lazily: src/cli/main.ts -> src/app.ts',
        'nothing-imports-app: bots/teams/reuse.ts -> src/app.ts',
        'intents-pure: src/intents/command.ts -> src/runtime/retry.ts',
        'boot-only-from-app: src/worker/open.ts -> src/boot/database.ts',
      ]),
    );
    // The rules' limits: a type-only pg import outside src/db, bots/ reaching src/chat/index.ts and view types.
    expect(violations.filter((v) => /\/ok-/.test(v.from))).toEqual([]);
  });
});

describe('house rules, by ESLint', () => {
  it('SQL strings, .query( calls and pg imports outside src/db, and functions over 100 lines, fail with a message that says what to do', async () => {
    const eslint = new ESLint({ cwd: fixtures, overrideConfigFile: path.join(root, 'eslint.config.js'), ignore: false });
    const results = await eslint.lintFiles(['src', 'bots', 'jobs']);
    const house = new Set(['no-restricted-syntax', 'no-restricted-imports', 'max-lines-per-function']);
    const found = results.flatMap((r) =>
      r.messages
        .filter((m) => m.ruleId !== null && house.has(m.ruleId))
        .map((m) => ({ file: path.relative(fixtures, r.filePath), line: m.line, rule: m.ruleId, message: m.message })),
    );
    const at = (file: string) => found.filter((f) => f.file === file);
    // One per statement head (SELECT, INSERT INTO, UPDATE … SET, DELETE FROM, WITH … AS (, CREATE, ALTER, GRANT),
    // as a string and as a template (one on a line of its own), then the `.query(` call.
    expect(at(path.join('src', 'chat', 'sql.ts')).map((f) => f.line)).toEqual([3, 4, 5, 7, 8, 9, 10, 11, 13]);
    for (const f of at(path.join('src', 'chat', 'sql.ts'))) expect(f.message).toContain('Move the statement to a query module in src/db/queries');
    expect(at(path.join('src', 'tools', 'pg-tool.ts'))).toEqual([
      expect.objectContaining({ rule: 'no-restricted-imports', message: expect.stringContaining('Only the data layer (src/db) imports pg as a value') }),
    ]);
    expect(at(path.join('bots', 'slack', 'pool.ts'))).toEqual([
      expect.objectContaining({ rule: 'no-restricted-imports', message: expect.stringContaining('bots/ gets no pool') }),
    ]);
    expect(at(path.join('src', 'worker', 'long.ts'))).toEqual([expect.objectContaining({ rule: 'max-lines-per-function', line: 2 })]);
    // Nothing else: not src/db (the data layer), not a type-only pg import, not sentences that start with an SQL word.
    expect(found.map((f) => f.file).sort()).toEqual(
      [
        ...Array(9).fill(path.join('src', 'chat', 'sql.ts')),
        path.join('src', 'tools', 'pg-tool.ts'),
        path.join('bots', 'slack', 'pool.ts'),
        path.join('src', 'worker', 'long.ts'),
      ].sort(),
    );
  });
});
