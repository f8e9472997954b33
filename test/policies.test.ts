/**
 * Policies as code (issue 21, item 4): the documented example rules tested with `tollgate policy
 * test` without starting anything, compared with `tollgate policy diff`, refused at load when a rule
 * can never be met, and, on a real run of `purchase-order`, the rule, version and digest recorded on
 * the approval and in its `approval.requested` event, with a quorum by group decided by people.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrincipal } from '../src/common/principals.ts';
import { checkSectionNames, parseProjectConfig, type ProjectConfig } from '../src/config/project-config.ts';
import { policyDigest } from '../src/approvals/policies.ts';
import { listRunApprovals } from '../src/approvals/index.ts';
import { builtinWorkflows } from '../src/workflows/index.ts';
import { purchaseOrderWorkflow } from '../src/workflows/purchase-order.ts';
import { inProcessCli } from './helpers/cli.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { createTestRuntime, waitForRun, type TestRuntime } from './helpers/runtime.ts';

const F1 = 'slack:T1:UF1';
const F2 = 'slack:T1:UF2';
const F3 = 'slack:T1:UF3';
const CFO = 'slack:T1:UCFO';
const RM1 = 'slack:T1:URM1';
const RM2 = 'teams:tenant-a:rm-2';
const REQUESTER = 'slack:T1:UREQ';

/** The example of docs/policies.md. */
const EXAMPLE = {
  groups: { finance: [F1, F2, F3], cfo: [CFO], 'release-managers': [RM1, RM2] },
  policies: {
    'purchase-order': {
      version: 3,
      rules: [
        { id: 'small', when: { amount: { below: 1000 } }, approve: '{amount} {currency} is below 1,000' },
        { id: 'finance', when: { amount: { atMost: 50000 } }, groups: ['finance'], timeout: '48h' },
        {
          id: 'finance-and-cfo',
          quorum: [
            { group: 'finance', count: 2 },
            { group: 'cfo', count: 1 },
          ],
          timeout: '24h',
          escalate: { groups: ['cfo'], timeout: '24h' },
        },
      ],
    },
    deploy: {
      version: 1,
      rules: [
        { id: 'production', when: { environment: { matches: '^prod', examples: ['production', 'prod-eu', 'staging'] } }, groups: ['release-managers'] },
        { id: 'other', approve: '{environment} is not production' },
      ],
    },
  },
};

let db: TestDb;
let dir: string;
let exampleFile: string;
const runtimes: TestRuntime[] = [];

function writeConfig(name: string, value: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(value, null, 2));
  return file;
}

beforeAll(async () => {
  db = await createTestDb();
  dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-policies-'));
  exampleFile = writeConfig('example.json', EXAMPLE);
});
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.stop()));
  await db.close();
});

describe('tollgate policy test', () => {
  it('prints the rule, the approvers by group, the quorum and the deadline for five inputs of the documented example', async () => {
    const cli = inProcessCli(() => db, { TOLLGATE_CONFIG: exampleFile });
    const small = await cli('policy', 'test', 'purchase-order', 'amount=500', 'currency=EUR');
    expect(small).toMatchObject({ code: 0, err: '' });
    expect(small.out).toContain('rule: small (rule 1)');
    expect(small.out).toContain('approved by rule: 500 EUR is below 1,000');
    expect(small.out).toContain('approvers: none needed');

    const medium = await cli('policy', 'test', 'purchase-order', 'amount=50000');
    expect(medium.out).toContain('rule: finance (rule 2)');
    expect(medium.out).toContain(`approvers: group finance: ${F1}, ${F2}, ${F3}\n`);
    expect(medium.out).toContain('quorum: any one');
    expect(medium.out).toContain('deadline: 48h, then rejected');

    const large = await cli('policy', 'test', 'purchase-order', 'amount=50001');
    expect(large.out).toContain('rule: finance-and-cfo (rule 3)');
    expect(large.out).toContain(`approvers: group finance: ${F1}, ${F2}, ${F3}; group cfo: ${CFO}`);
    expect(large.out).toContain('quorum: 2 of group finance and 1 of group cfo');
    expect(large.out).toContain('deadline: 24h, then escalated');
    expect(large.out).toContain(`escalation: group cfo: ${CFO}; quorum: any one; deadline: 24h, then rejected`);

    // The workflow's input schema reads the value as a run would: " PROD " is "prod".
    const production = await cli('policy', 'test', 'deploy', 'environment= PROD ');
    expect(production.out).toContain('rule: production (rule 1)');
    expect(production.out).toContain(`approvers: group release-managers: ${RM1}, ${RM2}`);
    expect(production.out).toContain('deadline: none');

    const staging = await cli('policy', 'test', 'deploy', 'environment=staging', '--json');
    expect(JSON.parse(staging.out)).toMatchObject({ rule: 'other', approvedByRule: 'staging is not production', approvers: null, version: 1 });

    // Nothing was started.
    expect((await db.pool.query('SELECT count(*)::int AS n FROM tollgate.runs')).rows[0]).toEqual({ n: 0 });
  });

  it('tests the default policy the settings define when no policy is configured', async () => {
    const file = writeConfig('defaults.json', { groups: { finance: [F1] }, workflows: { 'purchase-order': { approvalThreshold: 200 } } });
    const cli = inProcessCli(() => db, { TOLLGATE_CONFIG: file });
    const below = await cli('policy', 'test', 'purchase-order', 'amount=200', 'currency=EUR');
    expect(below.out).toContain('default policy (from workflows.purchase-order settings)');
    expect(below.out).toContain('approved by rule: 200 EUR is at or below the approval threshold of 200');
    const above = await cli('policy', 'test', 'purchase-order', 'amount=201');
    expect(above.out).toContain('rule: above-threshold');
    expect(above.out).toContain(`approvers: group finance: ${F1}`);
  });
});

describe('tollgate policy diff', () => {
  it('lists the sample inputs whose outcome changes between two configuration files, and only those', async () => {
    const after = structuredClone(EXAMPLE);
    after.policies['purchase-order'].version = 4;
    after.policies['purchase-order'].rules[0] = { id: 'small', when: { amount: { below: 2000 } }, approve: 'below 2,000' };
    after.policies.deploy.rules[0] = {
      id: 'production',
      when: { environment: { matches: '^(prod|live)', examples: ['production'] } },
      groups: ['release-managers'],
    };
    const afterFile = writeConfig('after.json', after);
    const cli = inProcessCli(() => db);
    const same = await cli('policy', 'diff', exampleFile, exampleFile);
    expect(same.out).toContain('purchase-order: 0 of');
    expect(same.out).toContain('deploy: 0 of');

    const diff = await cli('policy', 'diff', exampleFile, afterFile);
    expect(diff.code).toBe(0);
    const lines = diff.out.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('  amount='))).toEqual([
      '  amount=1000: rule finance: any one [finance = 3], deadline 48h -> rule small: approved by rule',
      '  amount=1001: rule finance: any one [finance = 3], deadline 48h -> rule small: approved by rule',
      '  amount=1999: rule finance: any one [finance = 3], deadline 48h -> rule small: approved by rule',
    ]);
    expect(lines.filter((l) => l.startsWith('  environment='))).toEqual([
      '  environment=live: rule other: approved by rule -> rule production: any one [release-managers = 2]',
    ]);
  });
});

describe('a policy that can never be met', () => {
  it('is refused when the configuration loads, naming the workflow and the rule', async () => {
    const bad = structuredClone(EXAMPLE) as { policies: { 'purchase-order': { rules: Record<string, unknown>[] } } };
    (bad.policies['purchase-order'].rules[2] as Record<string, unknown>).escalate = { groups: ['cfo'], quorum: 2, timeout: '24h' };
    expect(() => parseProjectConfig(bad)).toThrow(
      /policies\.purchase-order\.rules\.2 \(rule "finance-and-cfo"\): its escalation can never be met: it needs 2 approvals from group cfo, which has only 1 member \(slack:T1:UCFO\)/,
    );
    // The same refusal from the CLI, before anything is tested.
    const cli = inProcessCli(() => db, { TOLLGATE_CONFIG: writeConfig('bad.json', bad) });
    const refused = await cli('policy', 'test', 'purchase-order', 'amount=1');
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('rule "finance-and-cfo"');

    // A quorum by group that one person in two groups cannot fill.
    expect(() =>
      parseProjectConfig({
        groups: { finance: [F1], cfo: [F1] },
        policies: {
          'purchase-order': {
            rules: [
              {
                id: 'both',
                quorum: [
                  { group: 'finance', count: 1 },
                  { group: 'cfo', count: 1 },
                ],
              },
            ],
          },
        },
      }),
    ).toThrow(/policies\.purchase-order\.rules\.0 \(rule "both"\): can never be met: it needs 1 of group finance and 1 of group cfo from different people/);
    expect(() => parseProjectConfig({ policies: { deploy: { rules: [{ id: 'p', groups: ['release-managers'] }] } } })).toThrow(
      /policies\.deploy\.rules\.0 \(rule "p"\): names group "release-managers", which "groups" does not define/,
    );
    expect(() =>
      parseProjectConfig({
        groups: { finance: [F1] },
        policies: { deploy: { rules: [{ id: 'p', when: { environment: { equals: 'prod' } }, groups: ['finance'] }] } },
      }),
    ).toThrow(/the last rule must have no `when`/);
  });

  it('refuses at start-up a condition on a parameter the workflow does not have, and a policy for a workflow nobody has', () => {
    const typo = parseProjectConfig({
      groups: { finance: [F1] },
      policies: {
        'purchase-order': {
          rules: [
            { id: 'small', when: { amout: { below: 10 } }, approve: 'small' },
            { id: 'rest', groups: ['finance'] },
          ],
        },
      },
    });
    expect(() => builtinWorkflows(typo)).toThrow(
      /policies\.purchase-order\.rules\.0\.when \(rule "small"\): "amout" is not a known parameter of purchase-order \(did you mean "amount"\?\)/,
    );
    const elsewhere = parseProjectConfig({ groups: { finance: [F1] }, policies: { 'purchase-ordr': { rules: [{ id: 'all', groups: ['finance'] }] } } });
    expect(() => checkSectionNames(elsewhere, { workflows: ['purchase-order', 'deploy'], tools: [] })).toThrow(
      /policies\.purchase-ordr: "purchase-ordr" is not a known workflow \(did you mean "purchase-order"\?\)/,
    );
  });

  it('is refused at start-up when the workflow settings define it (escalation to a one-person cfo group with quorum 2)', () => {
    const project = parseProjectConfig({
      groups: { finance: [F1, F2, F3], cfo: [CFO] },
      workflows: { 'purchase-order': { quorum: 2, approvalTimeout: '1h', escalateToGroup: 'cfo' } },
    });
    expect(() => builtinWorkflows(project)).toThrow(
      /workflows\.purchase-order \(its default policy\) \(rule "above-threshold"\): its escalation can never be met: it needs 2 approvals from group cfo, which has only 1 member/,
    );
  });
});

describe('a run under a configured policy', () => {
  it('records the rule, version and digest on the approval and in its event, and waits for two of finance and one of cfo', async () => {
    const project: ProjectConfig = parseProjectConfig(EXAMPLE);
    const r = await createTestRuntime(db, [purchaseOrderWorkflow(project)], { project });
    runtimes.push(r);
    const { runtime } = r;
    const run = await runtime.startRun({
      workflow: 'purchase-order',
      input: { vendor: 'Acme', amount: 60000, currency: 'EUR', reason: 'servers' },
      requester: parsePrincipal(REQUESTER),
    });
    await waitForRun(runtime, run.id, 'waiting');
    const [approval] = await listRunApprovals(runtime.pool, run.id);
    const digest = policyDigest(EXAMPLE.policies['purchase-order']);
    expect(approval).toMatchObject({
      status: 'pending',
      quorum: '2 of group finance and 1 of group cfo',
      required: 3,
      policy: { rule: 'finance-and-cfo', version: 3, digest },
    });
    const { rows } = await db.pool.query('SELECT policy_rule, policy_version, policy_digest FROM tollgate.approvals WHERE run_id = $1', [run.id]);
    expect(rows).toEqual([{ policy_rule: 'finance-and-cfo', policy_version: 3, policy_digest: digest }]);
    const events = await db.pool.query<{ payload: Record<string, unknown> }>(
      `SELECT payload FROM tollgate.events WHERE run_id = $1 AND type = 'approval.requested'`,
      [run.id],
    );
    expect(events.rows[0]?.payload).toMatchObject({ policyRule: 'finance-and-cfo', policyVersion: 3, policyDigest: digest });
    // `policy test` prints the same digest.
    const shown = await inProcessCli(() => db, { TOLLGATE_CONFIG: exampleFile })('policy', 'test', 'purchase-order', 'amount=60000');
    expect(shown.out).toContain(`digest ${digest}`);

    const id = approval?.id as string;
    await runtime.decide(id, F1, 'approve');
    const second = await runtime.decide(id, F2, 'approve');
    expect(second.resolved).toBeUndefined();
    expect(second.message).toContain('2 of the 3 needed');
    const third = await runtime.decide(id, F3, 'approve'); // a third of finance fills no cfo seat
    expect(third.resolved).toBeUndefined();
    expect(third.message).toContain('2 of the 3 needed');
    expect(await runtime.decide(id, CFO, 'approve')).toMatchObject({ resolved: 'approved' });
    await waitForRun(runtime, run.id, 'succeeded');
  });

  it('approves by rule below the first threshold, recording the rule that did', async () => {
    const project = parseProjectConfig(EXAMPLE);
    const r = await createTestRuntime(db, [purchaseOrderWorkflow(project)], { project });
    runtimes.push(r);
    const run = await r.runtime.startRun({ workflow: 'purchase-order', input: { vendor: 'Acme', amount: 999, currency: 'EUR', reason: 'chairs' } });
    await waitForRun(r.runtime, run.id, 'succeeded');
    const approvals = await listRunApprovals(r.runtime.pool, run.id);
    expect(approvals[0]).toMatchObject({ autoReason: '999 EUR is below 1,000', policy: { rule: 'small', version: 3 } });
    const events = await db.pool.query<{ payload: Record<string, unknown> }>(
      `SELECT payload FROM tollgate.events WHERE run_id = $1 AND type = 'approval.auto_approved'`,
      [run.id],
    );
    expect(events.rows[0]?.payload).toMatchObject({ policyRule: 'small', policyVersion: 3 });
  });
});
