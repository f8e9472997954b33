import fs from 'node:fs/promises'; import os from 'node:os'; import path from 'node:path';
import type { Task } from 'graphile-worker';
import { startEmbeddedPostgres, withDatabase } from '../src/db/embedded.ts';
import { createLogger } from '../src/log.ts';
import { createPool, ensureDatabase } from '../src/db/connect.ts';
import { migrate } from '../src/db/migrate.ts';
import { WorkflowRegistry } from '../src/runtime/registry.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { newProcessId, startWorker } from '../src/worker.ts';
import { taskList } from '../jobs/index.ts';
import { fiveNoopSteps } from './runtime.ts';
const log = createLogger({ level: 'warn', format: 'json' });
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'probe-')); await fs.chmod(dir, 0o755);
const s = await startEmbeddedPostgres({ dataDir: dir, port: 0, log });
await ensureDatabase(s.url, 'p'); const pool = createPool(withDatabase(s.url, 'p'), 40, log);
await migrate(pool, log);
// time every query
const origConnect = pool.connect.bind(pool);
const qt: Record<string, number[]> = {};
const wrap = (client: any) => { if (client.__w) return client; client.__w = true; const oq = client.query.bind(client); client.query = (...a: any[]) => { const t = performance.now(); const p = oq(...a); const k = String(typeof a[0] === 'string' ? a[0] : a[0]?.text ?? a[0]?.name).replace(/\s+/g,' ').slice(0, 60); if (p && p.then) p.then(() => { (qt[k] ??= []).push(performance.now()-t); }, () => {}); return p; }; return client; };
(pool as any).connect = (...a: any[]) => { if (typeof a[0] === "function") { const cb = a[0]; return origConnect((e: any, c: any, d: any) => cb(e, c && wrap(c), d)); } return origConnect().then(wrap); };
const registry = new WorkflowRegistry().register(fiveNoopSteps);
const runtime = new Runtime({ pool, registry, log });
const processId = newProcessId();
const tasks = taskList({ runtime, processId });
const adv = tasks['run-advance'] as Task;
const marks = new Map<string, number[]>();
const waiters = new Map<string, () => void>();
tasks['run-advance'] = async (p, h) => { const id = (p as any).runId; marks.get(id)?.push(performance.now()); await adv(p, h); marks.get(id)?.push(performance.now()); waiters.get(id)?.(); };
const w = await startWorker({ pool, log, tasks, concurrency: 10, pollIntervalMs: 1000, deadAfterMs: 15000, processId });
const parts: number[][] = [];
for (let i = 0; i < 200; i++) {
  const t0 = performance.now();
  const done = new Promise<void>((r) => { (globalThis as any).__r = r; });
  const run = await runtime.startRun({ workflow: 'bench-five-steps', input: {} });
  const t1 = performance.now();
  marks.set(run.id, []);
  await new Promise<void>((r) => waiters.set(run.id, r));
  const t4 = performance.now();
  const m = marks.get(run.id)!;
  parts.push([t1 - t0, m[0]! - t1, m[1]! - m[0]!, t4 - m[1]!]);
}
const med = (i: number) => parts.map((p) => p[i]!).sort((a, b) => a - b)[100]!.toFixed(2);
console.log('startRun', med(0), 'pickup', med(1), 'advance', med(2), 'after', med(3));
for (const [k, v] of Object.entries(qt)) { v.sort((a,b)=>a-b); console.log(v.length, (v[Math.floor(v.length/2)]!).toFixed(2), k); }
await w.stop(); await pool.end(); await s.stop(); await fs.rm(dir, { recursive: true, force: true });
