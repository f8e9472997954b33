/**
 * One list of allowed workspaces and tenants (issue 22, item 4): the project's `tenants` governs
 * chat as it governs the console's sign-in (test/console-oidc.test.ts). A Slack request from a
 * workspace not on the list is answered 200 with nothing done (Slack re-sends anything else), a
 * Teams activity from a tenant not on the list is answered 403 although its token verifies; either
 * way nothing is recorded, and the log names the tenant. The same requests from listed tenants go
 * through, and an empty list lets everyone in, as before.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantOnList } from '../src/chat/tenants.ts';
import { createLogger } from '../src/common/log.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { demo } from '../src/workflows/demo.ts';
import { blockAction, slashCommand } from './fakes/slack/requests.ts';
import { newUser, type TeamsConversation } from './fakes/teams/index.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { poll } from './helpers/poll.ts';
import { startSlackHarness, type SlackHarness } from './helpers/slack.ts';

const TEAM = 'T0LISTED';
const OTHER_TEAM = 'T0NOTLISTED';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const OTHER_TENANT = 'f00dbabe-0000-4000-8000-000000000000';

let db: TestDb;
let h: SlackHarness;
const logged: Record<string, unknown>[] = [];

beforeAll(async () => {
  db = await createTestDb();
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logged.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  h = await startSlackHarness(db, [demo], {
    teams: true,
    project: parseProjectConfig({ tenants: [TEAM, TENANT] }),
    log: createLogger({ level: 'warn', destination: stream }),
  });
});

afterAll(async () => {
  await h?.stop();
  await db?.close();
});

/**
 * Everything a request could have recorded: runs, delivery keys, outbox rows, the Teams directory
 * (`send` waits until what was recorded is carried out, so a recorded run start is a run here).
 */
async function recorded(): Promise<{ runs: number; keys: number; messages: number; teamsTenants: number; teamsUsers: number }> {
  const count = async (sql: string) => Number((await db.pool.query<{ n: string }>(sql)).rows[0]?.n);
  return {
    runs: await count('SELECT count(*) AS n FROM tollgate.runs'),
    keys: await count('SELECT count(*) AS n FROM tollgate.chat_delivery_keys'),
    messages: await count('SELECT count(*) AS n FROM tollgate.chat_messages'),
    teamsTenants: await count('SELECT count(*) AS n FROM tollgate.teams_tenants'),
    teamsUsers: await count('SELECT count(*) AS n FROM tollgate.teams_users'),
  };
}

const refusalsOf = (tenant: string) => logged.filter((l) => l.tenant === tenant && String(l.msg).includes('not on the project configuration'));

describe('the tenants list at the chat door', () => {
  it('takes nothing from a Slack workspace not on the list (200, nothing recorded, logged), and serves a listed one', async () => {
    const before = await recorded();
    const res = await h.send(slashCommand({ text: 'run demo', userId: 'U0EVE', teamId: OTHER_TEAM, channelId: 'C0GENERAL' }));
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
    const click = await h.send(
      blockAction({ actionId: 'approval.approve', value: 'apr_nope', userId: 'U0EVE', teamId: OTHER_TEAM, channelId: 'C0GENERAL', messageTs: '1.0' }),
    );
    expect(click.status).toBe(200);
    expect(await recorded()).toEqual(before);
    expect(refusalsOf(OTHER_TEAM)).toHaveLength(2);
    expect(refusalsOf(OTHER_TEAM)[0]).toMatchObject({ platform: 'slack', tenant: OTHER_TEAM });

    const listed = await h.send(slashCommand({ text: 'run demo', userId: 'U0ADA', teamId: TEAM, channelId: 'C0GENERAL' }));
    expect(listed.status).toBe(200);
    expect((await recorded()).runs).toBe(before.runs + 1);
  });

  it('refuses a Teams activity from a tenant not on the list with 403, although its token verifies, and records nothing', async () => {
    const teams = h.teams!;
    const eve = newUser('Eve Outsider');
    const personal: TeamsConversation = { id: `a:personal-${eve.aadObjectId}`, conversationType: 'personal' };
    const before = await recorded();
    const res = await teams.send(teams.act.message({ text: 'run demo', from: eve, tenant: OTHER_TENANT, conversation: personal }));
    expect(res.status).toBe(403);
    expect(await recorded()).toEqual(before);
    expect(refusalsOf(OTHER_TENANT)).toHaveLength(1);
    expect(refusalsOf(OTHER_TENANT)[0]).toMatchObject({ platform: 'teams', tenant: OTHER_TENANT });

    // The same from the listed tenant goes through: its run starts.
    const ada = newUser('Ada Lovelace');
    const ok = await teams.send(
      teams.act.message({ text: 'run demo', from: ada, tenant: TENANT, conversation: { id: `a:personal-${ada.aadObjectId}`, conversationType: 'personal' } }),
    );
    expect(ok.status).toBe(200);
    await poll(async () => ((await recorded()).runs === before.runs + 1 ? true : undefined), { message: "the listed tenant's run" });
  });

  it('an empty list keeps every workspace and tenant in, as before', () => {
    expect(tenantOnList([], 'T0ANY')).toBe(true);
    expect(tenantOnList([], undefined)).toBe(true);
    expect(tenantOnList([TEAM], TEAM)).toBe(true);
    expect(tenantOnList([TEAM], OTHER_TEAM)).toBe(false);
    expect(tenantOnList([TEAM], undefined)).toBe(false);
  });
});
