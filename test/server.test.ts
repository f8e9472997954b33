import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServer } from '../src/server/http.ts';
import { createPool } from '../src/db/connect.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';

let db: TestDb;
const servers: HttpServer[] = [];
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await db.close();
});

async function serve(pool = db.pool, workerRunning?: () => boolean) {
  const http = createHttpServer({ log: testLogger(), checks: { pool, workerRunning } });
  servers.push(http);
  const addr = await http.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${addr.port}`;
}

describe('health endpoints', () => {
  it('answers /healthz and /readyz when the database and worker are up', async () => {
    const url = await serve(db.pool, () => true);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ok: true });
  });

  it('fails /readyz with the reason when the worker has stopped', async () => {
    const url = await serve(db.pool, () => false);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ ok: false, reasons: ['worker stopped'] });
  });

  it('fails /readyz with the reason when the database is unreachable', async () => {
    // a port nothing listens on: the pool cannot connect
    const dead = createPool('postgres://nobody:x@127.0.0.1:1/none', 2, testLogger());
    const url = await serve(dead, () => true);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as { reasons: string[] };
    expect(body.reasons[0]).toMatch(/^database unreachable: /);
    await dead.end();
  });

  it('serves Prometheus metrics with run counts', async () => {
    await db.pool.query(`INSERT INTO tollgate.runs (id, workflow, workflow_version, status, input) VALUES ('run_m1', 'demo', 1, 'succeeded', '{}')`);
    const url = await serve();
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toContain('tollgate_runs{workflow="demo",status="succeeded"} 1');
    expect(text).toContain('tollgate_up 1');
  });

  it('answers unknown paths with 404 and wrong methods with 405', async () => {
    const url = await serve();
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    expect((await fetch(`${url}/healthz`, { method: 'POST' })).status).toBe(405);
  });
});
