/**
 * Slack bench: acknowledgement latency of signed requests into `POST /slack/events` of a real
 * `tollgate start` process (bench/tollgate-process.ts: its HTTP server, and its worker off the
 * server's event loop), and the time from a click to the run's next step starting, on a real
 * (embedded) PostgreSQL with the fake Slack Web API. This process plays Slack: it signs and sends
 * the requests and answers the Web API calls, so none of that work is counted in the measured
 * process.
 *
 *   npx tsx bench/slack.ts            (N=200 by default; BENCH_SLACK_N=… to change)
 *
 * Requests go over keep-alive connections opened before each burst (bench/slack-client.ts); the
 * floor row is N concurrent GET /healthz on them, what a burst costs before any Slack work.
 *
 * Bursts of N concurrent requests: `/tollgate run` commands, Retry clicks on failed runs, Approve
 * clicks and Reject submissions on runs waiting at an approval. One at a time: Retry and Approve
 * clicks on an otherwise idle system (the latency of the path itself). "→ next step started" is
 * the time from sending the click to the `step.started` event of the step after it (ms
 * resolution: both clocks are this machine's). "→ every copy of the approval updated" is the time
 * from sending an Approve click to the last `chat.update` naming its approval that the fake Slack
 * API received (what a person watching the channel and the DMs waits for). Returns the figures as
 * rows (and prints them).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { auditKeyFromEnv } from '../src/audit/key.ts';
import { ensureDatabase, createPool } from '../src/db/connect.ts';
import { startEmbeddedPostgres, withDatabase } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrate.ts';
import { createLogger } from '../src/common/log.ts';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { demo } from '../src/workflows/demo.ts';
import { blockAction, slashCommand, viewSubmission, type SlackRequest } from '../test/fakes/slack/requests.ts';
import { slackClient } from './slack-client.ts';
import { startFakeSlack } from '../test/fakes/slack/server.ts';
import { APPROVER, benchApprove, benchRetry, TEAM } from './fixtures/slack-project.ts';
import { startTollgate } from './tollgate-process.ts';

const N = Number(process.env.BENCH_SLACK_N ?? 200);
const QUIET_N = 20;
const USER = 'U0BENCH';
const SIGNING_SECRET = 'bench-signing-secret-5c1e';
const BOT_TOKEN = 'xoxb-bench-token';
const PROJECT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/slack-project.ts');

export interface BenchRow {
  name: string;
  p50Ms: number;
  p99Ms: number;
  n: number;
}
const row = (name: string, xs: number[]): BenchRow => ({ name, p50Ms: pct(xs, 50), p99Ms: pct(xs, 99), n: xs.length });

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
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

/** Polls `sql` until it returns `n` rows. */
async function eventuallyRows(pool: import('pg').Pool, sql: string, n: number, timeoutMs = 120_000): Promise<{ id: string }[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await pool.query<{ id: string }>(sql);
    if (rows.length >= n) return rows;
    if (Date.now() > deadline) throw new Error(`only ${rows.length}/${n} rows within ${timeoutMs} ms: ${sql}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until no `chat-deliver` or `chat-intent` job is pending or running (the outbox and the recorded clicks have caught up). */
async function outboxSettled(pool: import('pg').Pool, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM graphile_worker.jobs WHERE task_identifier IN ('chat-deliver', 'chat-intent') AND run_at <= now() + interval '2 seconds'`,
    );
    if (Number(rows[0]?.n) === 0) return;
    if (Date.now() > deadline) throw new Error(`${rows[0]?.n} chat jobs still pending after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The database a chat bench's `tollgate start` uses: `databaseUrl` (a fresh one on the bench's
 * server) or an embedded PostgreSQL of its own in a temp dir, migrated, with a new audit key, and
 * a pool onto it. `close` ends the pool, stops the embedded server and removes the temp dir.
 */
export async function openBenchDatabase(name: string, databaseUrl: string | undefined, log: ReturnType<typeof createLogger>) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `tollgate-bench-${name}-`));
  fs.chmodSync(tmp, 0o755);
  let server: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
  let url = databaseUrl;
  if (!url) {
    server = await startEmbeddedPostgres({ dataDir: path.join(tmp, 'pg'), port: 0, log });
    await ensureDatabase(server.url, 'bench');
    url = withDatabase(server.url, 'bench');
  }
  const keyHex = randomBytes(32).toString('hex');
  const pool = createPool(url, 20, log, auditKeyFromEnv(keyHex));
  await migrate(pool, log);
  const close = async () => {
    await pool.end();
    await server?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  return { tmp, url, keyHex, pool, close };
}

/**
 * Runs the Slack measurements and prints them. `databaseUrl`: a fresh database to use (the
 * `npm run bench` section passes one on the bench's server); without it an embedded PostgreSQL
 * is started for this run alone.
 */
export async function runSlackBench(opts: { databaseUrl?: string; quiet?: boolean } = {}): Promise<BenchRow[]> {
  const log = createLogger({ level: 'warn', format: 'json' });
  const { tmp, url, keyHex, pool, close } = await openBenchDatabase('slack', opts.databaseUrl, log);
  const fake = await startFakeSlack({ token: BOT_TOKEN });
  const broken = path.join(tmp, 'retry-broken');
  fs.writeFileSync(broken, '');
  const tollgate = await startTollgate({
    DATABASE_URL: url,
    TOLLGATE_AUDIT_KEY: keyHex,
    TOLLGATE_CONFIG: PROJECT,
    TOLLGATE_DATA_DIR: tmp,
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_API_URL: fake.apiUrl,
    BENCH_RETRY_BROKEN_FILE: broken,
    LOG_LEVEL: process.env.BENCH_TOLLGATE_LOG_LEVEL ?? 'info',
    LOG_FORMAT: 'json',
  });
  // Runs the bench needs ready (failed, or waiting at an approval) are started from here, as the CLI would.
  const runtime = new Runtime({ pool, registry: new WorkflowRegistry().register(demo, benchRetry, benchApprove), log });
  const client = slackClient(tollgate.url, SIGNING_SECRET);
  const timed = async (req: SlackRequest, what: string): Promise<number> => {
    const res = await client.send(req);
    if (res.status !== 200) throw new Error(`${what} answered ${res.status}: ${res.body}`);
    return res.ms;
  };
  /** The floor under each burst: N concurrent GET /healthz on the connections the burst then uses. */
  const floors: number[] = [];
  const warm = async () => floors.push(...(await client.warm(N)));
  const startRuns = async (workflow: string, n: number, prefix: string, input: (i: number) => unknown) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const run = await runtime.startRun({
        workflow,
        input: input(i),
        requester: { platform: 'slack', tenant: TEAM, user: USER },
        origin: { platform: 'slack', tenant: TEAM, conversation: `${prefix}${i}`, thread: null },
      });
      ids.push(run.id);
    }
    return ids;
  };
  const pendingApprovals = async (runIds: string[]) => {
    const { rows } = await pool.query<{ id: string; run_id: string }>(
      `SELECT id, run_id FROM tollgate.approvals WHERE run_id = ANY($1) AND status = 'pending'`,
      [runIds],
    );
    if (rows.length !== runIds.length) throw new Error(`expected ${runIds.length} pending approvals, found ${rows.length}`);
    return rows;
  };
  /** ms from each click to the `step.started` of step `two` of its run (the latest, for a retried run). */
  const toStepTwo = async (clickedAt: Map<string, number>) => {
    const { rows } = await pool.query<{ run_id: string; at: Date }>(
      `SELECT run_id, max(created_at) AS at FROM tollgate.events WHERE run_id = ANY($1) AND type = 'step.started' AND payload->>'step' = 'two' GROUP BY run_id`,
      [[...clickedAt.keys()]],
    );
    return rows.map((r) => r.at.getTime() - (clickedAt.get(r.run_id) ?? NaN));
  };
  /**
   * ms from each Approve click to the last `chat.update` the fake Slack API received for its
   * approval (a call whose blocks name the approval: its thread copy, its DMs, the run message),
   * once the outbox has caught up: when every copy of the approval shows the decision.
   */
  const toCopiesUpdated = async (clickedAt: Map<string, number>) => {
    await outboxSettled(pool);
    const updates = fake.callsTo('chat.update').map((c) => ({ at: c.at, text: JSON.stringify(c.args) }));
    return [...clickedAt].map(([approvalId, at]) => {
      const last = Math.max(...updates.filter((u) => u.at >= at && u.text.includes(approvalId)).map((u) => u.at));
      if (!Number.isFinite(last)) throw new Error(`no chat.update named ${approvalId} after its Approve click`);
      return last - at;
    });
  };
  /** Jobs the worker has started so far, by task (from `GET /metrics`: the queue-lag histogram's counts). */
  const jobsStarted = async (): Promise<Map<string, number>> => {
    const text = await (await fetch(`${tollgate.url}/metrics`)).text();
    const counts = new Map<string, number>();
    for (const m of text.matchAll(/^tollgate_queue_lag_seconds_count\{task="([^"]+)"\} (\d+)/gm)) counts.set(m[1] as string, Number(m[2]));
    return counts;
  };
  /** Jobs started per click between two `jobsStarted()` readings, by task. */
  const perClick = (before: Map<string, number>, after: Map<string, number>, clicks: number) =>
    [...after]
      .map(([task, n]) => `${task} ${((n - (before.get(task) ?? 0)) / clicks).toFixed(2)}`)
      .filter((t) => !t.endsWith(' 0.00'))
      .join(', ');
  const jobCounts: string[] = [];
  try {
    // 1. N concurrent slash commands that start runs.
    await warm();
    const slashAcks = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        timed(slashCommand({ text: 'run demo sleepMs=0', userId: USER, teamId: TEAM, channelId: `CB${i}` }), 'slash command'),
      ),
    );
    // Acknowledged once recorded; the worker creates the runs right after.
    const started = await eventuallyRows(pool, `SELECT id FROM tollgate.runs WHERE workflow = 'demo'`, N);
    await waitAll(
      pool,
      started.map((r) => r.id),
      'succeeded',
    );
    await outboxSettled(pool);

    // 2. N failed runs, then N concurrent Retry clicks.
    const failedIds = await startRuns('bench-retry', N, 'CR', () => ({}));
    await waitAll(pool, failedIds, 'failed');
    await outboxSettled(pool);
    fs.rmSync(broken);
    await warm();
    const retryJobsBefore = await jobsStarted();
    const retriedAt = new Map<string, number>();
    const retryAcks = await Promise.all(
      failedIds.map((runId, i) => {
        retriedAt.set(runId, Date.now());
        return timed(blockAction({ userId: USER, teamId: TEAM, actionId: 'run.retry', value: runId, channelId: `CR${i}`, messageTs: '1.1' }), 'Retry click');
      }),
    );
    await waitAll(pool, failedIds, 'succeeded');
    const retryResume = await toStepTwo(retriedAt);
    await outboxSettled(pool);
    jobCounts.push(`${N} concurrent Retry clicks: ${perClick(retryJobsBefore, await jobsStarted(), N)}`);

    // 3. Retry clicks one at a time on an otherwise idle system.
    fs.writeFileSync(broken, '');
    const quiet = await startRuns('bench-retry', QUIET_N, 'CQ', () => ({}));
    await waitAll(pool, quiet, 'failed');
    await outboxSettled(pool);
    fs.rmSync(broken);
    const quietRetryAcks: number[] = [];
    const quietRetriedAt = new Map<string, number>();
    for (const [i, runId] of quiet.entries()) {
      quietRetriedAt.set(runId, Date.now());
      quietRetryAcks.push(
        await timed(blockAction({ userId: USER, teamId: TEAM, actionId: 'run.retry', value: runId, channelId: `CQ${i}`, messageTs: '1.1' }), 'Retry click'),
      );
      await waitAll(pool, [runId], 'succeeded');
    }
    const quietRetryResume = await toStepTwo(quietRetriedAt);

    // 4. N runs waiting at an approval (messages and DMs delivered), then N concurrent Approve clicks from the approver's DMs.
    const gatedIds = await startRuns('bench-approve', N, 'CA', (i) => ({ i }));
    await waitAll(pool, gatedIds, 'waiting');
    await outboxSettled(pool);
    const approvals = await pendingApprovals(gatedIds);
    await warm();
    const approveJobsBefore = await jobsStarted();
    const approvedAt = new Map<string, number>();
    const approvalClickedAt = new Map<string, number>();
    const approveAcks = await Promise.all(
      approvals.map((a) => {
        approvedAt.set(a.run_id, Date.now());
        approvalClickedAt.set(a.id, approvedAt.get(a.run_id) as number);
        return timed(
          blockAction({ userId: APPROVER, teamId: TEAM, actionId: 'approval.approve', value: a.id, channelId: `D${APPROVER}`, messageTs: '1.1' }),
          'Approve click',
        );
      }),
    );
    await waitAll(pool, gatedIds, 'succeeded');
    const approveResume = await toStepTwo(approvedAt);
    const approveCopies = await toCopiesUpdated(approvalClickedAt);
    jobCounts.push(`${N} concurrent Approve clicks: ${perClick(approveJobsBefore, await jobsStarted(), N)}`);
    const { rows: decided } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM tollgate.approval_decisions WHERE approval_id = ANY($1)`, [
      approvals.map((a) => a.id),
    ]);
    if (Number(decided[0]?.n) !== N) throw new Error(`expected ${N} decisions, found ${decided[0]?.n}`);

    // 5. Approve clicks one at a time on an otherwise idle system.
    const quietGated = await startRuns('bench-approve', QUIET_N, 'CAQ', (i) => ({ i: N + i }));
    await waitAll(pool, quietGated, 'waiting');
    await outboxSettled(pool);
    const quietApprovals = await pendingApprovals(quietGated);
    const quietApproveAcks: number[] = [];
    const quietApprovedAt = new Map<string, number>();
    const quietApprovalClickedAt = new Map<string, number>();
    const quietJobsBefore = await jobsStarted();
    for (const a of quietApprovals) {
      quietApprovedAt.set(a.run_id, Date.now());
      quietApprovalClickedAt.set(a.id, quietApprovedAt.get(a.run_id) as number);
      quietApproveAcks.push(
        await timed(
          blockAction({ userId: APPROVER, teamId: TEAM, actionId: 'approval.approve', value: a.id, channelId: `D${APPROVER}`, messageTs: '1.1' }),
          'Approve click',
        ),
      );
      await waitAll(pool, [a.run_id], 'succeeded');
      await outboxSettled(pool); // its copies updated before the next click: one at a time
    }
    const quietApproveResume = await toStepTwo(quietApprovedAt);
    const quietApproveCopies = await toCopiesUpdated(quietApprovalClickedAt);
    jobCounts.push(`Approve clicks one at a time: ${perClick(quietJobsBefore, await jobsStarted(), QUIET_N)}`);

    // 6. N runs waiting at an approval, then N concurrent Reject submissions (the reason modal).
    const rejectIds = await startRuns('bench-approve', N, 'CJ', (i) => ({ i: 2 * N + i }));
    await waitAll(pool, rejectIds, 'waiting');
    await outboxSettled(pool);
    const toReject = await pendingApprovals(rejectIds);
    await warm();
    const rejectAcks = await Promise.all(
      toReject.map((a) =>
        timed(
          viewSubmission({
            userId: APPROVER,
            teamId: TEAM,
            callbackId: 'approval.reject',
            privateMetadata: JSON.stringify({ approvalId: a.id, at: { channel: `D${APPROVER}`, threadTs: null } }),
            values: { reason: { value: { type: 'plain_text_input', value: 'not in this budget' } } },
          }),
          'Reject submission',
        ),
      ),
    );
    // bench-approve reads the gate's answer, so a rejected run still ends `succeeded`.
    await waitAll(pool, rejectIds, 'succeeded');
    const { rows: rejected } = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM tollgate.approval_decisions WHERE approval_id = ANY($1) AND decision = 'reject'`,
      [toReject.map((a) => a.id)],
    );
    if (Number(rejected[0]?.n) !== N) throw new Error(`expected ${N} rejections, found ${rejected[0]?.n}`);

    const rows: BenchRow[] = [
      row(`slack: floor, ${N} concurrent GET /healthz on the same connections`, floors),
      row(`slack: ack, ${N} concurrent /tollgate run`, slashAcks),
      row(`slack: ack, ${N} concurrent Approve clicks`, approveAcks),
      row(`slack: ack, ${N} concurrent Reject submissions`, rejectAcks),
      row(`slack: ack, ${N} concurrent Retry clicks`, retryAcks),
      row(`slack: Approve click → next step started (${N} concurrent)`, approveResume),
      row(`slack: Retry click → step started again (${N} concurrent)`, retryResume),
      row('slack: ack, Approve clicks one at a time', quietApproveAcks),
      row('slack: Approve click → next step started, one at a time', quietApproveResume),
      row('slack: ack, Retry clicks one at a time', quietRetryAcks),
      row('slack: Retry click → step started again, one at a time', quietRetryResume),
      // Appended, so the rows above keep their keys (slack.<i>) in earlier results.
      row(`slack: Approve click → every copy of the approval updated (${N} concurrent)`, approveCopies),
      row('slack: Approve click → every copy of the approval updated, one at a time', quietApproveCopies),
    ];
    if (opts.quiet) return rows;
    console.log(`Slack, against \`tollgate start\` (pid ${tollgate.pid})`);
    for (const r of rows) console.log(`  ${r.name.replace(/^slack: /, '').padEnd(58)} p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms (n=${r.n})`);
    console.log('Jobs the worker started per click, by task');
    for (const line of jobCounts) console.log(`  ${line}`);
    return rows;
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- tollgate start's last lines ---\n${tollgate.tail()}`, { cause: e });
  } finally {
    client.close();
    await tollgate.stop();
    await fake.close();
    await close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runSlackBench().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
