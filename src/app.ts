/**
 * Boots Tollgate: database (embedded or DATABASE_URL), migrations, workflow registry, runtime,
 * and, by mode, the worker and/or the HTTP server. `stop()` shuts down in order: stop taking
 * HTTP requests and jobs, let running steps finish (or release them), close the pool, stop the
 * embedded database.
 *
 * Under mode 'all' (`tollgate start`) the worker runs in a worker thread of its own
 * (src/worker/thread-host.ts), so workflow CPU never delays an HTTP acknowledgement;
 * TOLLGATE_WORKER_THREAD=off keeps it on this thread, as modes 'worker' and 'server' do. The
 * thread builds what a worker needs with the functions below (loadAppProject, composeCore,
 * startTaskWorker), the same ones startApp uses.
 */
import type { Config } from './config/config.ts';
import { openDatabase, prepareDatabase, type Database } from './boot/database.ts';
import { holdDeploymentConfig, type ConfigHold } from './config/digest.ts';
import { TollgateError } from './common/errors.ts';
import type { Logger } from './common/log.ts';
import { checkSectionNames, type ProjectConfig } from './config/project-config.ts';
import { loadProject, type Project } from './config/project.ts';
import { checkHttpToolConfig } from './tools/http-request.ts';
import { WorkflowRegistry } from './runtime/registry.ts';
import { Runtime } from './runtime/runtime.ts';
import type { HttpServer } from './server/http.ts';
import type { WorkerHandle } from './worker/worker.ts';
import { builtinWorkflows } from './workflows/index.ts';
import { builtinToolRegistry, type ToolRegistry } from './tools/index.ts';
import type pg from 'pg';
import { isModelConfigured, modelSettings } from './model/settings.ts';
import { createChat, type Chat } from './chat/index.ts';
import type { ChatAdapter } from './chat/platform.ts';
// The boot is the composition root: the one place in src/ that knows the adapters exist, and it
// sees them only as ChatAdapters. The adapters (Bolt, botbuilder) and the worker (Graphile Worker)
// are imported only by the modes that run them: a one-shot CLI command (`none`) starts in a
// fraction of the time without them.
const loadBots = () => import('../bots/index.ts');

export type AppMode = 'all' | 'server' | 'worker' | 'none';

export interface App {
  readonly config: Config;
  readonly project: ProjectConfig;
  readonly db: Database;
  readonly runtime: Runtime;
  readonly registry: WorkflowRegistry;
  /** The tools workflows may call (built-in and the project's). */
  readonly tools: ToolRegistry;
  readonly worker: WorkerHandle | undefined;
  readonly http: HttpServer | undefined;
  readonly url: string | undefined;
  /** The configured chat platforms (Slack when SLACK_BOT_TOKEN and a signing secret or app token are set …). */
  readonly adapters: readonly ChatAdapter[];
  /** The chat layer over them: intents in, the outbox out. */
  readonly chat: Chat;
  /**
   * Graceful: the HTTP door shuts at once (/readyz 503, new connections refused, idle ones closed)
   * while requests in flight finish, and the worker stops taking jobs while running steps finish
   * (or are suspended once their signal aborts); then the pool and the embedded database close.
   */
  stop(): Promise<void>;
  /**
   * The shutdown deadline (src/cli/commands/serve.ts): every HTTP connection closed now, and the
   * worker's jobs given back for the next worker. The process exits right after.
   */
  abandon(): Promise<void>;
}

/** The built-in workflows (configured by the project) and the project's own. */
export function buildRegistry(project: Project): WorkflowRegistry {
  return new WorkflowRegistry().register(...builtinWorkflows(project.config), ...project.workflows);
}

/** The project (configuration, workflows, tools), loaded and checked before anything starts. */
export async function loadAppProject(config: Config): Promise<{ project: ProjectConfig; registry: WorkflowRegistry; tools: ToolRegistry }> {
  const loaded = await loadProject(config.projectConfigPath);
  const project = loaded.config;
  // Built-in tools' settings are checked before anything starts, like the workflows' (buildRegistry).
  checkHttpToolConfig(project);
  const registry = buildRegistry(loaded);
  const tools = builtinToolRegistry().register(...loaded.tools);
  checkSectionNames(project, { workflows: registry.names(), tools: tools.names() });
  return { project, registry, tools };
}

/**
 * The runtime on `pool`, the configured chat adapters (built, neither mounted nor started) and the
 * chat layer over them. Without chat (one-shot CLI commands) there are no adapters.
 */
export async function composeCore(opts: {
  config: Config;
  log: Logger;
  pool: pg.Pool;
  project: ProjectConfig;
  registry: WorkflowRegistry;
  tools: ToolRegistry;
  withChat: boolean;
  /** The adapters' logger, when it differs from `log` (the worker thread's is quieter: the main thread has said it all). */
  adapterLog?: Logger;
}): Promise<{ runtime: Runtime; adapters: ChatAdapter[]; chat: Chat }> {
  const { config, log, pool, project, registry, tools } = opts;
  // One model client for model steps and free-text chat. It loads the openai package (most of a
  // second), so it is built only by the modes that run steps or read chat, and only when a model
  // is configured: without one, model steps and free text both treat the absent client as "not
  // configured" and say what to set.
  const settings = modelSettings(config, project);
  const model = opts.withChat && isModelConfigured(settings) ? (await import('./model/client.ts')).createModelClient(settings, log) : undefined;
  const runtime = new Runtime({ pool, registry, log, project, tools, maxRecoveries: config.runtime.maxRecoveries, model });
  // Undefined until createChat returns: the adapters are built first and hold `core` for later.
  let chat: Chat | undefined = undefined;
  const core = () => {
    if (!chat) throw new TollgateError('TG_INTERNAL', 'the chat layer is used before the boot built it');
    return chat.core;
  };
  const adapters = opts.withChat ? (await loadBots()).createChatAdapters({ config, core, log: opts.adapterLog ?? log }) : [];
  chat = createChat({
    pool,
    runtime,
    registry,
    log,
    platforms: adapters.map((a) => a.platform),
    reminderLeadMs: config.chat.approvalReminderLeadMs,
    // Free text in mentions and DMs; answered with the `run` form when no model is configured.
    model,
  });
  return { runtime, adapters, chat };
}

/** Graphile Worker running Tollgate's tasks on `runtime`, delivering chat messages through `chat`. */
export async function startTaskWorker(opts: {
  config: Config;
  log: Logger;
  pool: pg.Pool;
  project: ProjectConfig;
  runtime: Runtime;
  chat: Chat;
  processId: string;
  /** An earlier worker of this process known to be gone (see WorkerOptions.replaces). */
  replaces?: string;
}): Promise<WorkerHandle> {
  const { config, processId } = opts;
  // The instruments too (src/telemetry/metrics-registry.ts): the steps this worker runs are timed from its first job.
  const [{ startWorker }, { crontab, taskList }] = await Promise.all([
    import('./worker/worker.ts'),
    import('../jobs/index.ts'),
    import('./telemetry/metrics-registry.ts'),
  ]);
  return startWorker({
    pool: opts.pool,
    log: opts.log,
    tasks: taskList({ runtime: opts.runtime, processId, chat: opts.chat.deliverer, intents: opts.chat.core }),
    concurrency: config.worker.concurrency,
    pollIntervalMs: config.worker.pollIntervalMs,
    deadAfterMs: config.worker.deadAfterMs,
    abortStepsAfterMs: Math.floor(config.shutdownTimeoutMs / 2),
    processId,
    crontab: crontab({ retentionDays: opts.project.retention.days }),
    ...(opts.replaces ? { replaces: opts.replaces } : {}),
  });
}

export async function startApp(opts: { config: Config; log: Logger; mode: AppMode; db?: Database }): Promise<App> {
  const { config, log, mode } = opts;
  // A server bound beyond this machine without TOLLGATE_CONSOLE_TOKEN would show every run to the network.
  if (mode === 'all' || mode === 'server') (await import('./console/bind.ts')).checkConsoleBind(config);
  const { project, registry, tools } = await loadAppProject(config);
  // A serving process keeps its idle connections open (src/db/connect.ts createPool); a one-shot command does not.
  const db = opts.db ?? (await openDatabase(config, log, { keepIdle: mode !== 'none' }));
  let configHold: ConfigHold;
  try {
    await prepareDatabase(db, log);
    // One policy configuration per deployment: refuse to run beside live processes with another.
    configHold = await holdDeploymentConfig({ pool: db.pool, project, log, mode, liveForMs: config.worker.deadAfterMs });
  } catch (e) {
    await db.close();
    throw e;
  }
  const { runtime, adapters, chat } = await composeCore({ config, log, pool: db.pool, project, registry, tools, withChat: mode !== 'none' });

  let worker: WorkerHandle | undefined;
  let http: HttpServer | undefined;
  let webConsole: { close(): void } | undefined;
  let url: string | undefined;
  const runsWorker = mode === 'all' || mode === 'worker';
  // Its own pool on the same database and login, with this process's audit key; the database is
  // migrated and the configuration held here already, so the thread does neither.
  const threadStarting =
    mode === 'all' && config.worker.thread
      ? import('./worker/thread-host.ts').then(({ startWorkerThread }) =>
          startWorkerThread({ config, log, db: { url: db.url, auditKey: db.auditKey }, pool: db.pool }),
        )
      : undefined;
  threadStarting?.catch(() => {}); // awaited below, or stopped on the way out if something else fails first
  try {
    if (threadStarting) {
      // The thread loads its modules and project while the HTTP server is set up below.
    } else if (runsWorker) {
      const { newProcessId } = await import('./worker/worker.ts');
      worker = await startTaskWorker({ config, log, pool: db.pool, project, runtime, chat, processId: newProcessId() });
    }
    if (mode === 'all' || mode === 'server') {
      const { createHttpServer } = await import('./server/http.ts');
      const { sendJson } = await import('./common/http.ts');
      http = createHttpServer({
        log,
        limits: config.http,
        checks: {
          pool: db.pool,
          workerRunning: runsWorker ? () => worker?.isRunning() ?? false : undefined,
          workerProblem: runsWorker ? () => (worker ? worker.whyNotRunning() : 'worker starting') : undefined,
        },
        // Under `tollgate start` steps run in the worker thread: /metrics asks it for its instruments.
        metrics: threadStarting ? { fromWorker: () => worker?.metrics?.() } : {},
      });
      for (const a of adapters) a.mount(http);
      for (const route of (await loadBots()).UNCONFIGURED_ROUTES) {
        if (adapters.some((a) => a.platform.name === route.platform)) continue;
        http.mount('POST', route.path, (_req, res) => sendJson(res, route.status, { error: route.message }));
      }
      // The run page's "Export evidence" button downloads the run's evidence bundle.
      const { evidenceBundleHandler } = await import('./audit/bundle-http.ts');
      const evidence = evidenceBundleHandler({ pool: db.pool, registry, tools, auditKey: db.auditKey });
      webConsole = (await import('./console/index.ts')).mountConsole(http, { config, project, runtime, log, evidence, chat: chat.core });
      // A platform outage at start-up must not stop Tollgate: requests are taken, messages catch up.
      for (const a of adapters) {
        await a
          .start()
          .catch((e: unknown) => log.error({ err: e, platform: a.platform.name }, 'a chat platform could not be started; Tollgate runs on without it'));
      }
      if (threadStarting) worker = await threadStarting;
      const addr = await http.listen(config.port, config.host);
      url = `http://${addr.address}:${addr.port}`;
      log.info({ url }, 'HTTP server listening');
    } else if (mode === 'worker' && config.worker.metricsPort !== undefined) {
      ({ http, url } = await serveWorkerMetrics({ config, log, pool: db.pool, worker, port: config.worker.metricsPort }));
    }
  } catch (e) {
    await (worker ?? (await threadStarting?.catch(() => undefined)))?.stop();
    await configHold.stop();
    await db.close();
    throw e;
  }

  let stopping: Promise<void> | undefined;
  return {
    config,
    project,
    db,
    runtime,
    registry,
    tools,
    worker,
    http,
    url,
    adapters,
    chat,
    stop: () => (stopping ??= stopParts({ http, webConsole, worker, adapters, configHold, db, log })),
    abandon: async () => {
      http?.closeAllConnections();
      await worker?.abandon();
    },
  };
}

/** App.stop: the door first (synchronously, so /readyz answers 503 from now on), then everything else. */
async function stopParts(p: {
  http: HttpServer | undefined;
  webConsole: { close(): void } | undefined;
  worker: WorkerHandle | undefined;
  adapters: readonly ChatAdapter[];
  configHold: ConfigHold;
  db: Database;
  log: Logger;
}): Promise<void> {
  const door = p.http?.close();
  p.webConsole?.close(); // its live streams would keep the server from closing
  // The door drains and the worker stops side by side: the shutdown timeout is for both.
  await Promise.all([
    door,
    p.worker?.stop(),
    ...p.adapters.map((a) => a.stop().catch((e: unknown) => p.log.warn({ err: e, platform: a.platform.name }, 'chat platform stop'))),
  ]);
  await p.configHold.stop();
  await p.db.close();
}

/**
 * A worker process alone (WORKER_METRICS_PORT): its steps, runs, queue and outbox are timed
 * here and nowhere else, so it serves its own /metrics, and /healthz and /readyz for its
 * supervisor. No chat route, no console: those belong to `tollgate server`.
 */
async function serveWorkerMetrics(opts: {
  config: Config;
  log: Logger;
  pool: pg.Pool;
  worker: WorkerHandle | undefined;
  port: number;
}): Promise<{ http: HttpServer; url: string }> {
  const { config, log, worker: running } = opts;
  const { createHttpServer } = await import('./server/http.ts');
  const http = createHttpServer({
    log,
    limits: config.http,
    checks: { pool: opts.pool, workerRunning: () => running?.isRunning() ?? false, workerProblem: () => running?.whyNotRunning() ?? 'worker starting' },
  });
  const addr = await http.listen(opts.port, config.host);
  const url = `http://${addr.address}:${addr.port}`;
  log.info({ url }, 'worker metrics and health listening');
  return { http, url };
}
