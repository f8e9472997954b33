/**
 * Teams bench: acknowledgement latency of `Action.Execute` invokes (Approve on an approval card)
 * into `POST /api/messages` of a real `tollgate start` process (bench/tollgate-process.ts), each
 * with a channel JWT that botbuilder really validates against the fake Microsoft identity
 * (test/fakes/teams: OpenID metadata, JWKS, the managed-identity endpoint) and a fake Bot
 * Connector for the copies the outbox posts. This process plays Teams.
 *
 *   npx tsx bench/teams.ts            (N=200 by default; BENCH_TEAMS_N=… to change)
 *
 * An invoke is answered with the clicked card redrawn, so its ack includes the decision itself
 * (Teams decides inline: ARCHITECTURE.md, "The path of a click"). The channel reuses its token for
 * many requests, as Teams does (a channel token lives an hour); each request still carries it.
 * Requests go over keep-alive connections opened before the burst; the floor row is N concurrent
 * GET /healthz on them.
 */
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../src/common/log.ts';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { newConversation, startFakeBotConnector, startFakeBotIdentity, teamsActivities, type Activity } from '../test/fakes/teams/index.ts';
import { benchTeamsApprove, TEAMS_APPROVER, TEAMS_TENANT } from './fixtures/teams-project.ts';
import { startTollgate } from './tollgate-process.ts';
import { openBenchDatabase, type BenchRow } from './slack.ts';
import { latencyRowsSection } from './slack-section.ts';

const N = Number(process.env.BENCH_TEAMS_N ?? 200);
const QUIET_N = 20;
const PROJECT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/teams-project.ts');

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}
const row = (name: string, xs: number[]): BenchRow => ({ name, p50Ms: pct(xs, 50), p99Ms: pct(xs, 99), n: xs.length });

/** Keep-alive requests to one server, timed from the first byte written to the last byte read. */
function client(baseUrl: string) {
  const url = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const request = (method: string, p: string, body: string | undefined, headers: Record<string, string>) =>
    new Promise<{ status: number; ms: number; body: string }>((resolve, reject) => {
      const t0 = performance.now();
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          path: p,
          method,
          agent,
          headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, body: text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  return {
    invoke: (activity: Activity, token: string) =>
      request('POST', '/api/messages', JSON.stringify(activity), { 'content-type': 'application/json', authorization: `Bearer ${token}` }),
    warm: async (n: number) => (await Promise.all(Array.from({ length: n }, () => request('GET', '/healthz', undefined, {})))).map((r) => r.ms),
    close: () => agent.destroy(),
  };
}

async function waitAll(pool: import('pg').Pool, ids: string[], status: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM tollgate.runs WHERE id = ANY($1) AND status = $2', [ids, status]);
    if (Number(rows[0]?.n) === ids.length) return;
    if (Date.now() > deadline) throw new Error(`only ${rows[0]?.n}/${ids.length} runs reached ${status} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs the Teams measurements. `databaseUrl`: a fresh database (else an embedded PostgreSQL of its own). */
export async function runTeamsBench(opts: { databaseUrl?: string; quiet?: boolean } = {}): Promise<BenchRow[]> {
  const log = createLogger({ level: 'warn', format: 'json' });
  const { tmp, url, keyHex, pool, close } = await openBenchDatabase('teams', opts.databaseUrl, log);
  const identity = await startFakeBotIdentity({ tenantId: TEAMS_TENANT });
  const connector = await startFakeBotConnector({ accessToken: identity.accessToken });
  const settings = Object.fromEntries(Object.entries(identity.settings()).map(([k, v]) => [k, String(v)]));
  const tollgate = await startTollgate({
    ...settings,
    ...identity.env(),
    TEAMS_SERVICE_URL: connector.url,
    DATABASE_URL: url,
    TOLLGATE_AUDIT_KEY: keyHex,
    TOLLGATE_CONFIG: PROJECT,
    TOLLGATE_DATA_DIR: tmp,
    LOG_LEVEL: process.env.BENCH_TOLLGATE_LOG_LEVEL ?? 'warn',
    LOG_FORMAT: 'json',
  });
  const runtime = new Runtime({ pool, registry: new WorkflowRegistry().register(benchTeamsApprove), log });
  const act = teamsActivities({ serviceUrl: connector.url, appId: identity.appId });
  const token = identity.mint({ serviceUrl: connector.url });
  const teams = client(tollgate.url);
  const personal = newConversation('personal');
  const floors: number[] = [];
  let next = 0;
  let inline = 0;
  const gated = async (n: number) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const run = await runtime.startRun({ workflow: 'bench-teams-approve', input: { i: next++ }, origin: { platform: 'cli' } });
      ids.push(run.id);
    }
    await waitAll(pool, ids, 'waiting');
    const { rows } = await pool.query<{ id: string }>(`SELECT id FROM tollgate.approvals WHERE run_id = ANY($1) AND status = 'pending'`, [ids]);
    if (rows.length !== n) throw new Error(`expected ${n} pending approvals, found ${rows.length}`);
    return { ids, approvals: rows.map((r) => r.id) };
  };
  const approve = async (approvalId: string) => {
    const activity = act.invoke({ from: TEAMS_APPROVER, tenant: TEAMS_TENANT, conversation: personal, verb: 'approval.approve', data: { approvalId } });
    const res = await teams.invoke(activity, token);
    if (res.status !== 200) throw new Error(`Approve invoke answered ${res.status}: ${res.body}`);
    // Decided inline (the card, redrawn), or, in a burst, recorded and answered with a message (bots/teams/bot.ts INLINE_DECISIONS).
    if (res.body.includes('Recorded: you approved')) inline++;
    else if (!res.body.includes('approval is recorded')) throw new Error(`Approve invoke was not recorded: ${res.body.slice(0, 300)}`);
    return res.ms;
  };
  try {
    // 1. One at a time (the first also fetches the OpenID metadata and keys, as a fresh process does).
    const quiet = await gated(QUIET_N);
    const quietAcks: number[] = [];
    for (const id of quiet.approvals) quietAcks.push(await approve(id));
    await waitAll(pool, quiet.ids, 'succeeded');

    // 2. N concurrent Approve invokes.
    const burst = await gated(N);
    floors.push(...(await teams.warm(N)));
    inline = 0;
    const acks = await Promise.all(burst.approvals.map((id) => approve(id)));
    const inlineInBurst = inline;
    await waitAll(pool, burst.ids, 'succeeded');

    const rows = [
      row(`teams: floor, ${N} concurrent GET /healthz on the same connections`, floors),
      row(`teams: ack, ${N} concurrent Approve invokes (${inlineInBurst} decided inline, the rest recorded)`, acks),
      row('teams: ack, Approve invokes one at a time', quietAcks),
    ];
    if (opts.quiet) return rows;
    console.log(`Teams, against \`tollgate start\` (pid ${tollgate.pid})`);
    for (const r of rows) console.log(`  ${r.name.replace(/^teams: /, '').padEnd(66)} p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms (n=${r.n})`);
    const burstRow = rows[1] as BenchRow;
    const floorRow = rows[0] as BenchRow;
    console.log(`  ack p99 / floor p99: ${(burstRow.p99Ms / floorRow.p99Ms).toFixed(2)}×`);
    return rows;
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- tollgate start's last lines ---\n${tollgate.tail()}`, { cause: e });
  } finally {
    teams.close();
    await tollgate.stop();
    await connector.stop();
    await identity.stop();
    await close();
  }
}

/** The Teams figures in `npm run bench` (first round only, like the Slack section: hundreds of signed requests). */
export const teamsSection = latencyRowsSection('teams', (databaseUrl) => runTeamsBench({ databaseUrl, quiet: true }));
