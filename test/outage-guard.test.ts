/**
 * No false alarm after a database outage (issue 23). Two real worker processes
 * (test/fixtures/worker-process.ts) reach PostgreSQL through TCP proxies of this test, so each can
 * be cut off from the database on its own while the database itself stays up. Both are cut off for
 * longer than WORKER_DEAD_AFTER_MS, so both heartbeats go stale; then A gets its connection back
 * first. A must not take B, alive but not yet back, for dead: it judges no other worker by the age
 * of its heartbeat until it has beaten for WORKER_DEAD_AFTER_MS again (src/worker/worker.ts
 * `ageJudgement`). Once B is back nothing of it has been unlocked; and once A's wait is over it
 * does judge by age again (B cut off alone is reaped).
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ageJudgement } from '../src/worker/worker.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { holdsFor, poll } from './helpers/poll.ts';
import { startWorkerProcess, type WorkerProcess } from './helpers/processes.ts';

const DEAD_AFTER_MS = 2000; // a beat every 500 ms

/** A TCP proxy to PostgreSQL that can be cut (every connection dropped, new ones refused) and restored. */
interface CuttableProxy {
  readonly port: number;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

async function startProxy(target: { host: string; port: number }): Promise<CuttableProxy> {
  const sockets = new Set<net.Socket>();
  let down = false;
  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', drop);
      s.on('close', drop);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut: () => {
      down = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore: () => {
      down = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A worker process on its own proxy, with every log line it wrote. */
interface ProxiedWorker {
  readonly proc: WorkerProcess;
  readonly proxy: CuttableProxy;
  logs(): Record<string, unknown>[];
}

let db: TestDb;
const workers: ProxiedWorker[] = [];

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  for (const w of workers) {
    w.proc.kill('SIGKILL');
    await w.proc.exited;
    await w.proxy.close();
  }
  await db?.close();
});

async function startProxiedWorker(): Promise<ProxiedWorker> {
  const url = new URL(db.url);
  const proxy = await startProxy({ host: url.hostname, port: Number(url.port) });
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  const proc = await startWorkerProcess(url.toString(), { WORKER_DEAD_AFTER_MS: String(DEAD_AFTER_MS), WORKER_CONCURRENCY: '2', TEST_LOG_LEVEL: 'info' });
  let out = '';
  proc.child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const w: ProxiedWorker = {
    proc,
    proxy,
    logs: () =>
      out.split('\n').flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
  };
  workers.push(w);
  return w;
}

/** A worker process's heartbeat row (one per process), or undefined when there is none. */
async function heartbeat(w: ProxiedWorker): Promise<{ process_id: string; worker_ids: string[]; age_ms: number } | undefined> {
  const { rows } = await db.pool.query<{ process_id: string; worker_ids: string[]; age_ms: number }>(
    `SELECT process_id, worker_ids, extract(epoch FROM now() - beat_at) * 1000 AS age_ms FROM tollgate.worker_heartbeats WHERE pid = $1`,
    [w.proc.pid],
  );
  const row = rows[0];
  return row ? { ...row, age_ms: Number(row.age_ms) } : undefined;
}

const reapLines = (w: ProxiedWorker) => w.logs().filter((l) => l.msg === 'unlocked the jobs of dead workers');
const output =
  (...ws: ProxiedWorker[]) =>
  () =>
    ws.map((w, i) => `worker ${i}:\n${w.proc.stderr().slice(-4000)}`).join('\n');

describe('a worker back from a database outage', () => {
  it('does not take a live worker that is not back yet for dead, and judges by age again once the others had time to beat', async () => {
    const a = await startProxiedWorker();
    const b = await startProxiedWorker();
    const detail = output(a, b);
    const bBeat = await poll(
      async () => {
        const h = await heartbeat(b);
        return h?.worker_ids.some((id) => id.startsWith('pool-')) ? h : undefined;
      },
      { message: "B's heartbeat naming its pool", detail },
    );
    const bProcess = bBeat.process_id;
    const bPool = bBeat.worker_ids.find((id) => id.startsWith('pool-')) as string;
    await poll(async () => (await heartbeat(a))?.worker_ids.some((id) => id.startsWith('pool-')), { message: "A's heartbeat naming its pool", detail });

    // A job B holds (locked under its pool id, as a job B is running is).
    const { rows: added } = await db.pool.query<{ id: string }>(`SELECT (graphile_worker.add_job('nobody-runs-this', '{}'::json)).id`);
    const jobId = added[0]?.id as string;
    await db.pool.query('UPDATE graphile_worker._private_jobs SET locked_by = $1, locked_at = now() WHERE id = $2::bigint', [bPool, jobId]);
    const jobLockedBy = async () =>
      (await db.pool.query<{ locked_by: string | null }>('SELECT locked_by FROM graphile_worker._private_jobs WHERE id = $1::bigint', [jobId])).rows[0]
        ?.locked_by;

    // The outage: both cut off until both heartbeats are well past WORKER_DEAD_AFTER_MS.
    a.proxy.cut();
    b.proxy.cut();
    await poll(
      async () => {
        const [ha, hb] = [await heartbeat(a), await heartbeat(b)];
        return ha && hb && ha.age_ms > 1.5 * DEAD_AFTER_MS && hb.age_ms > 1.5 * DEAD_AFTER_MS;
      },
      { message: 'both heartbeats to go stale', timeoutMs: 30_000, detail },
    );
    expect(a.logs().some((l) => l.msg === 'worker heartbeat failed; retrying on every beat')).toBe(true);

    // A is back first. B is alive, but its heartbeat is stale and it cannot beat yet.
    a.proxy.restore();
    await poll(async () => (await heartbeat(a))!.age_ms < DEAD_AFTER_MS / 2, { message: 'A to beat again', timeoutMs: 30_000, detail });
    await holdsFor(async () => (await heartbeat(b)) !== undefined && (await jobLockedBy()) === bPool && reapLines(a).length === 0, {
      forMs: DEAD_AFTER_MS * 0.6, // within A's wait (DEAD_AFTER_MS from its first beat back)
      message: "B's heartbeat and B's job to stay while A waits",
      detail,
    });
    expect((await heartbeat(b))!.age_ms).toBeGreaterThan(DEAD_AFTER_MS); // stale: judged by age, B would be dead
    expect(a.logs().some((l) => String(l.msg).startsWith('this worker was cut off from the database'))).toBe(true);
    await db.pool.query('DELETE FROM graphile_worker._private_jobs WHERE id = $1::bigint', [jobId]);

    // B is back: it beats again before A's wait is over, and nothing of it was taken.
    b.proxy.restore();
    await poll(async () => (await heartbeat(b))!.age_ms < DEAD_AFTER_MS / 2, { message: 'B to beat again', timeoutMs: 30_000, detail });
    await holdsFor(async () => (await heartbeat(b)) !== undefined && reapLines(a).length === 0 && reapLines(b).length === 0, {
      forMs: DEAD_AFTER_MS * 1.5, // past A's wait and B's
      message: 'both workers to keep each other alive',
      detail,
    });

    // A's wait is over: B cut off alone (its heartbeat goes stale while A's stays fresh) is reaped by age.
    b.proxy.cut();
    const reaped = await poll(() => reapLines(a).find((l) => (l.processes as string[]).includes(bProcess)), {
      message: 'A to reap B, cut off alone',
      timeoutMs: 15_000,
      detail,
    });
    expect(reaped.goneHere).toEqual([]);
  }, 90_000);
});

describe('ageJudgement', () => {
  const clock = () => {
    let t = 0;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  };

  it('judges by age at once after start and through a failed beat or two', () => {
    const c = clock();
    const j = ageJudgement(8000, c.now);
    expect(j.recorded(c.now())).toEqual({ cutOff: false, byAge: true });
    c.advance(2000);
    j.failed();
    c.advance(2000);
    expect(j.recorded(c.now() - 5)).toEqual({ cutOff: false, byAge: true }); // 4 s since the last beat landed: others are not stale yet
  });

  it('waits deadAfterMs after beats failed for more than half of it, or after one beat took that long', () => {
    const c = clock();
    const j = ageJudgement(8000, c.now);
    for (let i = 0; i < 5; i++) {
      c.advance(2000);
      j.failed();
    }
    expect(j.recorded(c.now() - 5)).toEqual({ cutOff: true, byAge: false });
    c.advance(7999);
    expect(j.recorded(c.now() - 5).byAge).toBe(false);
    c.advance(1);
    expect(j.recorded(c.now() - 5)).toEqual({ cutOff: false, byAge: true });

    const started = c.now();
    c.advance(4001); // a write that hung for that long before it landed
    expect(j.recorded(started)).toEqual({ cutOff: true, byAge: false });
    c.advance(8000);
    expect(j.recorded(c.now() - 5).byAge).toBe(true);
  });
});
