/**
 * `deploy` gates every environment except those the configuration lists as non-production
 * (issue 9, item 5): `Production`, ` PROD ` or any unlisted name waits for a release manager and
 * its webhook is not called; names are compared trimmed and in lower case.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrincipal } from '../src/common/principals.ts';
import { parseProjectConfig, type ProjectConfig } from '../src/config/project-config.ts';
import { deployWorkflow } from '../src/workflows/deploy.ts';
import { builtinWorkflows } from '../src/workflows/index.ts';
import { startHttpTarget, type HttpTarget } from './helpers/http-target.ts';
import { useTestRuntimes, waitForRun } from './helpers/runtime.ts';

const files = useTestRuntimes();
let versions: HttpTarget;
let webhook: HttpTarget;
let project: ProjectConfig;
const deployed = new Map<string, string>();

beforeAll(async () => {
  versions = await startHttpTarget((req) => {
    const m = /^\/services\/([^/]+)\/([^/]+)\/version$/.exec(req.url);
    return { json: { version: deployed.get(`${m?.[1]}/${m?.[2]}`) ?? '1.0.0' } };
  });
  webhook = await startHttpTarget((req) => {
    const b = JSON.parse(req.body) as { service: string; version: string; environment: string };
    deployed.set(`${b.service}/${b.environment}`, b.version);
    return { status: 202, json: { accepted: true } };
  });
  project = parseProjectConfig({
    groups: { 'release-managers': ['slack:T1:URM'] },
    workflows: {
      deploy: {
        webhookUrl: `${webhook.url}/deploy`,
        currentVersionUrl: `${versions.url}/services/{service}/{environment}/version`,
        verifyAttempts: 2,
        nonProductionEnvironments: ['Staging '],
      },
    },
    tools: { 'http.request': { allowedHosts: [versions.allowEntry, webhook.allowEntry] } },
  });
});
afterAll(async () => {
  await Promise.all([versions, webhook].map((t) => t?.close()));
});

describe('deploy environments', () => {
  it('waits for a release manager for Production, " PROD " and unlisted names, and never calls the webhook for them', async () => {
    const { runtime } = await files.start([deployWorkflow(project)], { project });
    for (const environment of ['Production', ' PROD ', 'prod', 'live-eu']) {
      const run = await runtime.startRun({
        workflow: 'deploy',
        input: { service: 'api', version: '2.0.0', environment },
        requester: parsePrincipal('slack:T1:UDEV'),
      });
      await waitForRun(runtime, run.id, 'waiting');
      const { rows } = await files.db.pool.query('SELECT status, risk, auto_reason FROM tollgate.approvals WHERE run_id = $1', [run.id]);
      expect([environment, rows]).toEqual([environment, [{ status: 'pending', risk: 'high', auto_reason: null }]]);
    }
    expect(webhook.requests).toEqual([]);
  });

  it('deploys to a listed non-production environment, however it is spelled, through a gate approved by rule', async () => {
    const { runtime } = await files.start([deployWorkflow(project)], { project });
    const run = await runtime.startRun({ workflow: 'deploy', input: { service: 'api', version: '3.0.0', environment: ' STAGING' } });
    const done = await waitForRun(runtime, run.id, 'succeeded');
    expect(done.output).toMatchObject({ environment: 'staging', version: '3.0.0' });
    const { rows } = await files.db.pool.query('SELECT status, auto_reason FROM tollgate.approvals WHERE run_id = $1', [run.id]);
    expect(rows).toEqual([{ status: 'approved', auto_reason: 'staging is not a production environment' }]);
    expect(webhook.requests.map((r) => JSON.parse(r.body))).toEqual([{ service: 'api', version: '3.0.0', environment: 'staging' }]);
  });

  it('refuses the old productionEnvironments setting at start-up instead of ignoring it', () => {
    expect(() => builtinWorkflows(parseProjectConfig({ workflows: { deploy: { productionEnvironments: ['production'] } } }))).toThrow(
      /workflows\.deploy\.productionEnvironments: is no longer read: every environment is production unless listed in workflows\.deploy\.nonProductionEnvironments/,
    );
  });
});
