/**
 * One policy configuration per deployment (issue 9, item 7): processes on one database with
 * different TOLLGATE_CONFIG files would decide the same run differently. The second one is refused,
 * naming the settings that differ; the same configuration starts anywhere; a changed configuration
 * is adopted when every process is restarted with it, without a manual step.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App, type AppMode } from '../src/app.ts';
import { main } from '../src/cli/main.ts';
import { loadConfig } from '../src/config/config.ts';
import { isTollgateError } from '../src/common/errors.ts';
import { createTestDb, TEST_AUDIT_ENV, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-digest-'));
const WEBHOOK = 'https://hooks.example.com/services/T0/B0/s3cr3t-path-token';

function configFile(name: string, config: unknown): string {
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

const base = {
  groups: { finance: ['slack:T1:UFIN1', 'slack:T1:UFIN2'] },
  operators: ['slack:T1:UOPS'],
  workflows: { 'purchase-order': { approvalThreshold: 1000 }, deploy: { webhookUrl: WEBHOOK } },
  tools: { 'http.request': { allowedHosts: ['api.example.com'] } },
};
const A = configFile('a', base);
const sameAsA = configFile('a-copy', JSON.parse(JSON.stringify(base)));
const B = configFile('b', {
  ...base,
  groups: { finance: ['slack:T1:UFIN1'] },
  workflows: { ...base.workflows, 'purchase-order': { approvalThreshold: 100000 } },
});

let db: TestDb;
const apps: App[] = [];

beforeAll(async () => {
  db = await createTestDb();
});
afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop();
});
afterAll(async () => {
  await db?.close();
});

function env(config: string): NodeJS.ProcessEnv {
  return { ...TEST_AUDIT_ENV, DATABASE_URL: db.url, TOLLGATE_CONFIG: config, LOG_LEVEL: 'silent', WORKER_POLL_INTERVAL_MS: '100', PORT: '0' };
}

async function start(config: string, mode: AppMode = 'worker'): Promise<App> {
  const app = await startApp({ config: loadConfig(env(config)), log: testLogger(), mode });
  apps.push(app);
  return app;
}

async function refusal(config: string, mode: AppMode = 'worker'): Promise<Error> {
  try {
    await start(config, mode);
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the process to refuse to start');
}

async function stored(): Promise<{ digest: string; summary: unknown } | undefined> {
  return (await db.pool.query<{ digest: string; summary: unknown }>('SELECT digest, summary FROM tollgate.deployment_config')).rows[0];
}

describe('one configuration per deployment', () => {
  it('a second process with another configuration refuses to start and names the differing settings; the same one starts', async () => {
    await start(A);
    await start(sameAsA, 'server'); // same settings from another file: fine, in any mode
    const e = await refusal(B);
    expect(isTollgateError(e) && e.code).toBe('TG_CONFIG_CONFLICT');
    expect(e.message).toMatch(/differs from the one 2 live process\(es\) of this deployment run with/);
    expect(e.message).toContain('at: groups.finance, workflows.purchase-order.approvalThreshold.');
    // The refused process left nothing behind: the deployment's configuration is still A's.
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM tollgate.deployment_config_holders');
    expect(rows[0].n).toBe(2);
  });

  it('a one-shot CLI command with another configuration is refused while the deployment runs', async () => {
    await start(A);
    const err: string[] = [];
    const code = await main(['node', 'tollgate', 'runs', 'list'], { out: () => {}, err: (s) => err.push(s) }, env(B));
    expect(code).toBe(1);
    expect(err.join('')).toContain('at: groups.finance, workflows.purchase-order.approvalThreshold.');
    expect(await main(['node', 'tollgate', 'runs', 'list'], { out: () => {}, err: () => {} }, env(A))).toBe(0);
  });

  it('a changed configuration is adopted when every process restarts with it: no manual step', async () => {
    const first = await start(A);
    const before = await stored();
    await first.stop();
    await start(B);
    await start(B);
    const after = await stored();
    expect(after?.digest).not.toBe(before?.digest);
    // …and now the old configuration is the one refused.
    expect((await refusal(A)).message).toContain('at: groups.finance, workflows.purchase-order.approvalThreshold.');
  });

  it('a process that died without stopping (its listing gone stale) does not hold a configuration back; a live one does', async () => {
    const listOther = (seen: string) =>
      db.pool.query(
        `INSERT INTO tollgate.deployment_config_holders (process_id, digest, mode, hostname, pid, seen_at)
         VALUES ('killed-worker', (SELECT digest FROM tollgate.deployment_config), 'worker', 'elsewhere', 42, now() - $1::interval)`,
        [seen],
      );
    await (await start(A)).stop(); // the deployment runs A; nothing is live now
    await listOther('0 seconds'); // a worker with A that was SIGKILLed a moment ago: still within the liveness window
    expect((await refusal(B)).message).toMatch(/run with \(worker on elsewhere:42\)/);
    await db.pool.query("UPDATE tollgate.deployment_config_holders SET seen_at = now() - interval '1 hour'");
    await start(B); // its listing is stale: the process is gone, and B is adopted
    const { rows } = await db.pool.query<{ process_id: string }>('SELECT process_id FROM tollgate.deployment_config_holders');
    expect(rows.map((r) => r.process_id)).not.toContain('killed-worker');
  });

  it('stores hashes only, and credentials are not policy: a different token starts beside the old one', async () => {
    const withToken = (token: string) =>
      configFile(`token-${token}`, {
        ...base,
        tools: { 'http.request': { allowedHosts: ['api.example.com'], headers: { 'api.example.com': { Authorization: `Bearer ${token}` } } } },
      });
    await start(withToken('old'));
    await start(withToken('new'));
    const text = JSON.stringify(await stored());
    expect(text).not.toContain('s3cr3t');
    expect(text).not.toContain('Bearer');
    expect(text).toContain('workflows.deploy.webhookUrl');
  });
});
