/**
 * The worker thread of `tollgate start` (started and supervised by src/worker/thread-host.ts):
 * its own pool, runtime, registry and chat deliverer, and `startWorker` with the options
 * `tollgate worker` uses. The database is already migrated and the configuration held by the
 * main thread. Chat adapters are built for their platforms' Web API clients (the outbox posts
 * through them) but never mounted nor started: requests arrive at the main thread.
 *
 * Messages: `stop` (stop the worker gracefully, close the pool, answer `stopped`) and `beat`
 * (one heartbeat now). It posts `started` or `failed` once, then `status` whenever the worker's
 * running state or its reason changes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { composeCore, loadAppProject, startTaskWorker } from '../app.ts';
import { auditKey } from '../audit/key.ts';
import { createPool } from '../db/connect.ts';
import { TollgateError } from '../common/errors.ts';
import { createLogger } from '../common/log.ts';
import { startTracing } from '../telemetry/tracing.ts';
import { trackPool } from '../telemetry/metrics.ts';
import { answerMetricsRequest } from '../telemetry/metrics-thread.ts';
import '../telemetry/metrics-registry.ts'; // this thread's instruments (steps run here), asked for by the main thread's /metrics
import type { WorkerHandle } from './worker.ts';
import type { FromThread, ToThread, WorkerThreadData } from './thread-host.ts';

/** How often the worker's state is compared with what the main thread was last told. */
const STATUS_EVERY_MS = 200;

const data = workerData as WorkerThreadData;
const port = parentPort;
if (!port) throw new TollgateError('TG_WORKER_THREAD', 'src/worker/thread.ts runs as a worker thread of `tollgate start`, not on its own.');
const post = (m: FromThread) => port.postMessage(m);

const { config } = data;
const log = createLogger({ level: config.logLevel, format: config.logFormat }).child({ thread: 'worker' });
// As `serve` does on the main thread (src/cli/commands/serve.ts): libraries start promises nobody awaits
// (Graphile Worker's completeJob/failJob), and a rejection there must not end the worker.
process.on('unhandledRejection', (reason) => {
  log.error({ err: reason }, 'unhandled promise rejection in the worker thread (a bug: please report it); the worker keeps running');
});

const tracing = await startTracing(config.tracing, log);
const key = data.auditKey ? auditKey(Buffer.from(data.auditKey.bytes), data.auditKey.source) : undefined;
// Named, so pg_stat_activity tells the worker's connections from the HTTP server's.
const url = new URL(data.url);
url.searchParams.set('application_name', 'tollgate-worker');
const pool = createPool(url.toString(), config.pgPoolSize, log, key, { keepIdle: true });
trackPool('tollgate-worker', pool);

let worker: WorkerHandle;
try {
  const { project, registry, tools } = await loadAppProject(config);
  // The main thread has logged which platforms are on and off; this thread repeats warnings only.
  const adapterLog = log.child({}, { level: log.isLevelEnabled('warn') ? 'warn' : config.logLevel });
  const { runtime, chat } = await composeCore({ config, log, pool, project, registry, tools, withChat: true, adapterLog });
  worker = await startTaskWorker({
    config,
    log,
    pool,
    project,
    runtime,
    chat,
    processId: data.processId,
    ...(data.replaces ? { replaces: data.replaces } : {}),
  });
} catch (e) {
  log.error({ err: e }, 'the worker thread could not start its worker');
  post({ type: 'failed', message: (e as Error).message });
  await pool.end().catch(() => {});
  process.exit(1);
}

let told = { running: worker.isRunning(), why: worker.whyNotRunning() };
post({ type: 'started' });
post({ type: 'status', ...told });
const watch = setInterval(() => {
  const now = { running: worker.isRunning(), why: worker.whyNotRunning() };
  if (now.running === told.running && now.why === told.why) return;
  told = now;
  post({ type: 'status', ...now });
}, STATUS_EVERY_MS);

port.on('message', (m: ToThread) => {
  if (m.type === 'beat') {
    worker.beat().then(
      () => post({ type: 'beat', id: m.id }),
      (e: unknown) => post({ type: 'beat', id: m.id, error: (e as Error).message }),
    );
  } else if (m.type === 'metrics') {
    void answerMetricsRequest().then((metrics) => post({ type: 'metrics', id: m.id, metrics }));
  } else if (m.type === 'stop') {
    clearInterval(watch);
    void (async () => {
      try {
        await worker.stop();
        await pool.end();
        await tracing.shutdown();
      } catch (e) {
        log.warn({ err: e }, 'worker thread stop');
      } finally {
        post({ type: 'stopped' });
      }
    })();
  }
});
