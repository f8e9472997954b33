/**
 * Slack bench: acknowledgement latency of signed requests into `POST /slack/events` and the time
 * from a Retry click to the failed step starting again, on a real (embedded) PostgreSQL, the real
 * Bolt app on our HTTP server, a real Graphile worker and the fake Slack Web API.
 *
 *   npx tsx bench/slack.ts            (N=200 by default; BENCH_SLACK_N=… to change)
 *
 * Approve clicks (the headline figure): N runs of a workflow waiting at an approval gate,
 * their copies (run message, thread, DM) delivered, then N concurrent signed Approve clicks by the
 * approver: verify, record the decision + events + the run's job in one transaction, ack; a
 * worker then resumes each run at its next step. Retry clicks exercise the same path for failed
 * runs. Returns the figures as rows (and prints them).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ensureDatabase, createPool } from '../src/db/connect.ts';
import { startEmbeddedPostgres, withDatabase } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrate.ts';
import { NonRetriableError } from '../src/errors.ts';
import { createLogger } from '../src/log.ts';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { demo } from '../src/workflows/demo.ts';
import { parseProjectConfig } from '../src/project-config.ts';
import { blockAction, slashCommand } from '../test/fakes/slack/requests.ts';
import { startSlackHarness } from '../test/helpers/slack.ts';
import { taskList } from '../jobs/index.ts';
import { newProcessId, startWorker } from '../src/worker.ts';
import { BENCH_AUDIT_KEY } from './types.ts';

const N = Number(process.env.BENCH_SLACK_N ?? 200);
const TEAM = 'T0BENCH';
const USER = 'U0BENCH';
const APPROVER = 'U0APPROVER';

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
const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(1)} ms, p99 ${pct(xs, 99).toFixed(1)} ms (n=${xs.length})`;

async function waitAll(pool: import('pg').Pool, ids: string[], status: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM tollgate.runs WHERE id = ANY($1) AND status = $2', [ids, status]);
    if (Number(rows[0]?.n) === ids.length) return;
    if (Date.now() > deadline) throw new Error(`only ${rows[0]?.n}/${ids.length} runs reached ${status} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until no `slack-deliver` job is pending or running (the outbox has caught up). */
async function outboxSettled(pool: import('pg').Pool, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM graphile_worker.jobs WHERE task_identifier = 'slack-deliver' AND run_at <= now() + interval '2 seconds'`);
    if (Number(rows[0]?.n) === 0) return;
    if (Date.now() > deadline) throw new Error(`${rows[0]?.n} Slack deliveries still pending after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Runs the Slack measurements and prints them. `databaseUrl`: a fresh database to use (the
 * `npm run bench` section passes one on the bench's server); without it an embedded PostgreSQL
 * is started for this run alone.
 */
export async function runSlackBench(opts: { databaseUrl?: string; quiet?: boolean } = {}): Promise<BenchRow[]> {
  const log = createLogger({ level: 'warn', format: 'json' });
  let dir: string | undefined;
  let server: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
  let url = opts.databaseUrl;
  if (!url) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-bench-'));
    fs.chmodSync(dir, 0o755);
    server = await startEmbeddedPostgres({ dataDir: dir, port: 0, log });
    await ensureDatabase(server.url, 'bench');
    url = withDatabase(server.url, 'bench');
  }
  const pool = createPool(url, 40, log, BENCH_AUDIT_KEY);
  await migrate(pool, log);
  const flags = { broken: true };
  const twoSteps = defineWorkflow({
    name: 'bench-retry',
    version: 1,
    description: 'one step, then one that fails until told otherwise',
    input: z.object({}),
    run: async (ctx) => {
      await ctx.step('one', () => 1);
      return ctx.step('two', () => {
        if (flags.broken) throw new NonRetriableError('broken for the bench');
        return 2;
      });
    },
  });
  const gated = defineWorkflow({
    name: 'bench-approve',
    version: 1,
    description: 'one step, an approval by the approver, one step',
    input: z.object({ i: z.number() }),
    run: async (ctx) => {
      await ctx.step('one', () => 1);
      const gate = await ctx.approval('approval', { policy: { approvers: [`slack:${TEAM}:${APPROVER}`] }, summary: `Bench order ${ctx.input.i}`, params: { i: ctx.input.i }, tool: 'bench.noop', risk: 'low' });
      return ctx.step('two', () => gate.approved);
    },
  });
  const project = parseProjectConfig({});
  const h = await startSlackHarness({ pool }, [demo, twoSteps, gated] as unknown as WorkflowDefinition[], { concurrency: 10, project });
  try {
    // 1. N concurrent signed slash commands that start runs.
    const slashAcks = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const req = slashCommand({ text: 'run demo sleepMs=0', userId: USER, teamId: TEAM, channelId: `CB${i}` });
        const t0 = performance.now();
        const res = await h.send(req);
        if (res.status !== 200) throw new Error(`slash command answered ${res.status}`);
        return performance.now() - t0;
      }),
    );
    const { rows: started } = await pool.query<{ id: string }>(`SELECT id FROM tollgate.runs WHERE workflow = 'demo'`);
    await waitAll(pool, started.map((r) => r.id), 'succeeded');

    // 2. N failed runs, then N concurrent signed Retry clicks.
    const failedIds: string[] = [];
    for (let i = 0; i < N; i++) {
      const run = await h.runtime.startRun({
        workflow: 'bench-retry',
        input: {},
        requester: { platform: 'slack', tenant: TEAM, user: USER },
        origin: { platform: 'slack', tenant: TEAM, conversation: `CR${i}`, thread: null },
      });
      failedIds.push(run.id);
    }
    await waitAll(pool, failedIds, 'failed');
    flags.broken = false;
    const sentAt = new Map<string, number>();
    const clickAcks = await Promise.all(
      failedIds.map(async (runId, i) => {
        const req = blockAction({ userId: USER, teamId: TEAM, actionId: 'run.retry', value: runId, channelId: `CR${i}`, messageTs: '1.1' });
        sentAt.set(runId, Date.now());
        const t0 = performance.now();
        const res = await h.send(req);
        if (res.status !== 200) throw new Error(`Retry click answered ${res.status}`);
        return performance.now() - t0;
      }),
    );
    await waitAll(pool, failedIds, 'succeeded');
    const { rows: resumed } = await pool.query<{ run_id: string; at: Date }>(
      `SELECT run_id, max(created_at) AS at FROM tollgate.events WHERE run_id = ANY($1) AND type = 'step.started' AND payload->>'step' = 'two' GROUP BY run_id`,
      [failedIds],
    );
    const resume = resumed.map((r) => r.at.getTime() - (sentAt.get(r.run_id) ?? NaN));

    // 3. The same click one at a time on an otherwise idle system: the latency of the path itself.
    const quiet: string[] = [];
    flags.broken = true;
    for (let i = 0; i < 20; i++) {
      const run = await h.runtime.startRun({
        workflow: 'bench-retry',
        input: {},
        requester: { platform: 'slack', tenant: TEAM, user: USER },
        origin: { platform: 'slack', tenant: TEAM, conversation: `CQ${i}`, thread: null },
      });
      quiet.push(run.id);
    }
    await waitAll(pool, quiet, 'failed');
    await new Promise((r) => setTimeout(r, 1000)); // let the message deliveries settle
    flags.broken = false;
    const quietAcks: number[] = [];
    const quietResume: number[] = [];
    for (const [i, runId] of quiet.entries()) {
      const req = blockAction({ userId: USER, teamId: TEAM, actionId: 'run.retry', value: runId, channelId: `CQ${i}`, messageTs: '1.1' });
      const sent = Date.now();
      const t0 = performance.now();
      await h.send(req);
      quietAcks.push(performance.now() - t0);
      await waitAll(pool, [runId], 'succeeded');
      const { rows } = await pool.query<{ at: Date }>(
        `SELECT max(created_at) AS at FROM tollgate.events WHERE run_id = $1 AND type = 'step.started' AND payload->>'step' = 'two'`,
        [runId],
      );
      quietResume.push((rows[0]?.at.getTime() ?? NaN) - sent);
    }

    // 4. N runs waiting at an approval gate (messages and DMs delivered), then N concurrent signed
    //    Approve clicks by the approver from their DMs.
    const gatedIds: string[] = [];
    for (let i = 0; i < N; i++) {
      const run = await h.runtime.startRun({
        workflow: 'bench-approve',
        input: { i },
        requester: { platform: 'slack', tenant: TEAM, user: USER },
        origin: { platform: 'slack', tenant: TEAM, conversation: `CA${i}`, thread: null },
      });
      gatedIds.push(run.id);
    }
    await waitAll(pool, gatedIds, 'waiting');
    await outboxSettled(pool);
    const { rows: approvals } = await pool.query<{ id: string; run_id: string }>(`SELECT id, run_id FROM tollgate.approvals WHERE run_id = ANY($1) AND status = 'pending'`, [gatedIds]);
    if (approvals.length !== N) throw new Error(`expected ${N} pending approvals, found ${approvals.length}`);
    const clickedAt = new Map<string, number>();
    const approveAcks = await Promise.all(
      approvals.map(async (a) => {
        const req = blockAction({ userId: APPROVER, teamId: TEAM, actionId: 'approval.approve', value: a.id, channelId: `D${APPROVER}`, messageTs: '1.1' });
        clickedAt.set(a.run_id, Date.now());
        const t0 = performance.now();
        const res = await h.send(req);
        if (res.status !== 200) throw new Error(`Approve click answered ${res.status}`);
        return performance.now() - t0;
      }),
    );
    await waitAll(pool, gatedIds, 'succeeded');
    const stepTwoStarted = async (ids: string[]) =>
      (
        await pool.query<{ run_id: string; at: Date }>(
          `SELECT run_id, max(created_at) AS at FROM tollgate.events WHERE run_id = ANY($1) AND type = 'step.started' AND payload->>'step' = 'two' GROUP BY run_id`,
          [ids],
        )
      ).rows;
    const approveResume = (await stepTwoStarted(gatedIds)).map((r) => r.at.getTime() - (clickedAt.get(r.run_id) ?? NaN));
    const { rows: decided } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM tollgate.approval_decisions WHERE approval_id = ANY($1)`, [approvals.map((a) => a.id)]);
    if (Number(decided[0]?.n) !== N) throw new Error(`expected ${N} decisions, found ${decided[0]?.n}`);

    // 5. Approve clicks one at a time on an otherwise idle system.
    const quietGated: string[] = [];
    for (let i = 0; i < 20; i++) {
      const run = await h.runtime.startRun({
        workflow: 'bench-approve',
        input: { i: N + i },
        requester: { platform: 'slack', tenant: TEAM, user: USER },
        origin: { platform: 'slack', tenant: TEAM, conversation: `CAQ${i}`, thread: null },
      });
      quietGated.push(run.id);
    }
    await waitAll(pool, quietGated, 'waiting');
    await outboxSettled(pool);
    const quietApproveAcks: number[] = [];
    const quietApproveResume: number[] = [];
    for (const runId of quietGated) {
      const { rows: ar } = await pool.query<{ id: string }>(`SELECT id FROM tollgate.approvals WHERE run_id = $1 AND status = 'pending'`, [runId]);
      const req = blockAction({ userId: APPROVER, teamId: TEAM, actionId: 'approval.approve', value: ar[0]?.id ?? '', channelId: `D${APPROVER}`, messageTs: '1.1' });
      const sent = Date.now();
      const t0 = performance.now();
      await h.send(req);
      quietApproveAcks.push(performance.now() - t0);
      await waitAll(pool, [runId], 'succeeded');
      const [r] = await stepTwoStarted([runId]);
      quietApproveResume.push((r?.at.getTime() ?? NaN) - sent);
    }

    // 6. Diagnostic: the same burst with no worker running, so the acks do not share the two
    //    cores with run advances and Slack deliveries; the runs resume once a worker is back.
    const idleIds: string[] = [];
    for (let i = 0; i < N; i++) {
      const run = await h.runtime.startRun({
        workflow: 'bench-approve',
        input: { i: 2 * N + i },
        requester: { platform: 'slack', tenant: TEAM, user: USER },
        origin: { platform: 'slack', tenant: TEAM, conversation: `CAI${i}`, thread: null },
      });
      idleIds.push(run.id);
    }
    await waitAll(pool, idleIds, 'waiting');
    await outboxSettled(pool);
    await h.worker.stop();
    const { rows: idleApprovals } = await pool.query<{ id: string }>(`SELECT id FROM tollgate.approvals WHERE run_id = ANY($1) AND status = 'pending'`, [idleIds]);
    const noWorkerAcks = await Promise.all(
      idleApprovals.map(async (a) => {
        const req = blockAction({ userId: APPROVER, teamId: TEAM, actionId: 'approval.approve', value: a.id, channelId: `D${APPROVER}`, messageTs: '1.1' });
        const t0 = performance.now();
        const res = await h.send(req);
        if (res.status !== 200) throw new Error(`Approve click answered ${res.status}`);
        return performance.now() - t0;
      }),
    );
    const processId = newProcessId();
    const worker = await startWorker({ pool, log, tasks: taskList({ runtime: h.runtime, processId, chat: h.chat.deliverer, intents: h.chat.core }), concurrency: 10, pollIntervalMs: 100, deadAfterMs: 3000, processId });
    try {
      await waitAll(pool, idleIds, 'succeeded');
    } finally {
      await worker.stop();
    }

    const rows: BenchRow[] = [
      row(`slack: ack, ${N} concurrent /tollgate run`, slashAcks),
      row(`slack: ack, ${N} concurrent Retry clicks`, clickAcks),
      row('slack: Retry click → step started', resume),
      row(`slack: ack, ${N} concurrent Approve clicks`, approveAcks),
      row(`slack: Approve click → next step started (${N} concurrent)`, approveResume),
      row('slack: ack, Approve clicks one at a time', quietApproveAcks),
      row('slack: Approve click → next step started, one at a time', quietApproveResume),
      row(`slack: ack, ${N} concurrent Approve clicks, no worker running (diagnostic)`, noWorkerAcks),
    ];
    if (opts.quiet) return rows;
    console.log('Slack');
    console.log(`  ack, ${N} concurrent signed /tollgate run commands: ${fmt(slashAcks)}`);
    console.log(`  ack, ${N} concurrent signed Retry clicks:           ${fmt(clickAcks)}`);
    console.log(`  Retry click → failed step started again:           ${fmt(resume)} (ms resolution)`);
    console.log(`  one click at a time: ack ${fmt(quietAcks)}; click → step started ${fmt(quietResume)}`);
    console.log(`  ack, ${N} concurrent signed Approve clicks:         ${fmt(approveAcks)}`);
    console.log(`  Approve click → next step started (concurrent):    ${fmt(approveResume)} (ms resolution)`);
    console.log(`  Approve one at a time: ack ${fmt(quietApproveAcks)}; click → next step started ${fmt(quietApproveResume)}`);
    console.log(`  ack, ${N} concurrent Approve clicks, no worker running (diagnostic): ${fmt(noWorkerAcks)}`);
    return rows;
  } finally {
    await h.stop();
    await pool.end();
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runSlackBench().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
