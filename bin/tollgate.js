#!/usr/bin/env node
// Runs the compiled CLI (dist/, written by `npm run build`, which `npm install` and `npm ci` run)
// with plain node: compiling the TypeScript through tsx on every start cost each command 1–2 s.
// While changing the sources, run them through tsx instead: `npm run dev`, `npm run dev:tollgate -- <command>`.
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const entry = new URL('../dist/src/cli/main.js', import.meta.url);
/** The folders compiled into dist/ (tsconfig.build.json). */
const SOURCES = ['src', 'bots', 'jobs'];

/**
 * Why dist/ must not be run, or undefined. Stale code would behave unlike the sources being read
 * and edited, silently. A stat of each source file (about a hundred) costs a few milliseconds.
 */
function notRunnable() {
  let built;
  try {
    built = statSync(entry).mtimeMs;
  } catch {
    return 'Tollgate is not built (dist/src/cli/main.js is missing): run `npm run build` (npm install runs it too).';
  }
  const newer = (dir) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return undefined; // no sources next to the build: nothing to compare with
    }
    for (const e of entries) {
      const file = `${dir}/${e.name}`;
      const found = e.isDirectory() ? newer(file) : e.name.endsWith('.ts') && statSync(file).mtimeMs > built ? file : undefined;
      if (found) return found;
    }
    return undefined;
  };
  for (const dir of SOURCES) {
    const file = newer(`${root}${dir}`);
    if (file) {
      return `Tollgate's compiled JavaScript in dist/ is older than ${file.slice(root.length)}: run \`npm run build\`, or run the sources through tsx with \`npm run dev\` (README, "Development").`;
    }
  }
  return undefined;
}

const why = notRunnable();
if (why) {
  process.stderr.write(`${why}\n`);
  process.exit(1);
}
// pg 8 asks when it loads whether it runs in a Cloudflare Worker. Where there is no `navigator`
// (Node 20; Node 21 and later have one) it finds out by constructing a fetch Response, which loads
// Node's whole fetch implementation: some 50 ms of every command that opens the database. A
// navigator for the length of that one load answers the question; it is gone before anything else runs.
if (globalThis.navigator === undefined) {
  globalThis.navigator = { userAgent: `Node.js/${process.versions.node}` };
  try {
    await import('pg');
  } finally {
    delete globalThis.navigator;
  }
}
const { main } = await import(entry.href);
process.exit(await main(process.argv));
