/**
 * The layering ARCHITECTURE.md promises, checked on the source: src/ is platform-neutral. Only the
 * composition root (src/app.ts) may import from bots/, and only the adapter list (bots/index.ts);
 * nothing in src/ imports a chat SDK; one platform's folder never imports another's (what both
 * need lives in src/chat or src/views).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
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
    const offenders = sources('src').flatMap((file) => imports(file).filter((s) => /^(@slack\/|botbuilder)/.test(s)).map((s) => `${file} imports ${s}`));
    expect(offenders).toEqual([]);
  });

  it('no platform folder in bots/ imports another one', () => {
    const offenders: string[] = [];
    for (const file of sources('bots')) {
      const own = file.split(path.sep)[1];
      for (const spec of imports(file)) {
        if (!spec.startsWith('.')) continue;
        const target = path.relative(root, path.resolve(root, path.dirname(file), spec)).split(path.sep);
        if (target[0] === 'bots' && target.length > 2 && own && file.split(path.sep).length > 2 && target[1] !== own) offenders.push(`${file} imports ${target.join('/')}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
