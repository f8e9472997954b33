import path from 'node:path';
import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { main } from '../src/cli/main.ts';
import { loadProject } from '../src/config/project.ts';
import { createTestDb, type TestDb, TEST_AUDIT_ENV } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';

const FIXTURE = path.resolve(import.meta.dirname, 'fixtures/project.ts');
let db: TestDb;
let worker: App;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  db = await createTestDb();
  env = { DATABASE_URL: db.url, ...TEST_AUDIT_ENV, TOLLGATE_CONFIG: FIXTURE, LOG_LEVEL: 'silent', WORKER_POLL_INTERVAL_MS: '100' };
  worker = await startApp({ config: loadConfig(env), log: testLogger(), mode: 'worker' });
});
afterAll(async () => {
  await worker.stop();
  await db.close();
});

async function cli(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'tollgate', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) }, env);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('a TypeScript project module in TOLLGATE_CONFIG', () => {
  it('registers its own workflow and tool beside the built-in ones, and the worker runs them', async () => {
    const listed = await cli(['workflows', '--json']);
    expect((JSON.parse(listed.out) as { name: string }[]).map((w) => w.name)).toEqual(['crm-from-email', 'demo', 'deploy', 'greet', 'purchase-order']);
    const ran = await cli(['run', 'greet', 'name=Ada', '--wait', '--json']);
    expect(ran.err).toBe('');
    expect(ran.code).toBe(0);
    expect(JSON.parse(ran.out).run).toMatchObject({ status: 'succeeded', output: { text: 'HELLO, ADA' } });
    expect(worker.project.groups).toEqual({ greeters: ['slack:T1:U1'] });
  });

  it('stops start-up with the file and the reason when the module exports something else', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-project-'));
    const bad = path.join(dir, 'bad.mjs');
    writeFileSync(bad, 'export default { workflows: [{ name: "x" }] };\n');
    await expect(loadProject(bad)).rejects.toThrow(/TOLLGATE_CONFIG module .*bad\.mjs exports `workflows` that are not all workflow definitions/);
    const none = path.join(dir, 'none.mjs');
    writeFileSync(none, 'export const x = 1;\n');
    await expect(loadProject(none)).rejects.toThrow(/has no default export/);
  });
});
