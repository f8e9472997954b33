/**
 * Boots Tollgate: database (embedded or DATABASE_URL), migrations, workflow registry, runtime,
 * and, by mode, the worker and/or the HTTP server. `stop()` shuts down in order: stop taking
 * HTTP requests and jobs, let running steps finish (or release them), close the pool, stop the
 * embedded database.
 */
import type { Config } from './config.ts';
import { openDatabase, type Database } from './db/connect.ts';
import { prepareDatabase } from './db/app-role.ts';
import { holdDeploymentConfig, type ConfigHold } from './config-digest.ts';
import type { Logger } from './log.ts';
import { checkSectionNames, type ProjectConfig } from './project-config.ts';
import { loadProject, type Project } from './project.ts';
import { checkHttpToolConfig } from './tools/http-request.ts';
import { WorkflowRegistry } from './runtime/registry.ts';
import { Runtime } from './runtime/runtime.ts';
import type { HttpServer } from './server/http.ts';
import type { WorkerHandle } from './worker.ts';
import { builtinWorkflows } from './workflows/index.ts';
import { builtinToolRegistry } from './tools/index.ts';
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
  readonly worker: WorkerHandle | undefined;
  readonly http: HttpServer | undefined;
  readonly url: string | undefined;
  /** The configured chat platforms (Slack when SLACK_BOT_TOKEN and a signing secret or app token are set …). */
  readonly adapters: readonly ChatAdapter[];
  /** The chat layer over them: intents in, the outbox out. */
  readonly chat: Chat;
  stop(): Promise<void>;
}

/** The built-in workflows (configured by the project) and the project's own. */
export function buildRegistry(project: Project): WorkflowRegistry {
  return new WorkflowRegistry().register(...builtinWorkflows(project.config), ...project.workflows);
}

export async function startApp(opts: { config: Config; log: Logger; mode: AppMode; db?: Database }): Promise<App> {
  const { config, log, mode } = opts;
  const loaded = await loadProject(config.projectConfigPath);
  const project = loaded.config;
  // Built-in tools' settings are checked before anything starts, like the workflows' (buildRegistry).
  checkHttpToolConfig(project);
  const registry = buildRegistry(loaded);
  const tools = builtinToolRegistry().register(...loaded.tools);
  checkSectionNames(project, { workflows: registry.names(), tools: tools.names() });
  const db = opts.db ?? (await openDatabase(config, log));
  let configHold: ConfigHold;
  try {
    await prepareDatabase(db, log);
    // One policy configuration per deployment: refuse to run beside live processes with another.
    configHold = await holdDeploymentConfig({ pool: db.pool, project, log, mode, liveForMs: config.worker.deadAfterMs });
  } catch (e) {
    await db.close();
    throw e;
  }
  const runtime = new Runtime({ pool: db.pool, registry, log, project, tools, maxRecoveries: config.runtime.maxRecoveries });
  let chat: Chat | undefined;
  const core = () => {
    if (!chat) throw new Error('the chat layer is used before the boot built it');
    return chat.core;
  };
  const adapters = mode === 'none' ? [] : (await loadBots()).createChatAdapters({ config, pool: db.pool, core, log });
  chat = createChat({
    pool: db.pool,
    runtime,
    registry,
    log,
    platforms: adapters.map((a) => a.platform),
    reminderLeadMs: config.chat.approvalReminderLeadMs,
  });

  let worker: WorkerHandle | undefined;
  let http: HttpServer | undefined;
  let url: string | undefined;
  try {
    if (mode === 'all' || mode === 'worker') {
      const [{ newProcessId, startWorker }, { crontab, taskList }] = await Promise.all([import('./worker.ts'), import('../jobs/index.ts')]);
      const processId = newProcessId();
      worker = await startWorker({
        pool: db.pool,
        log,
        tasks: taskList({ runtime, processId, chat: chat.deliverer }),
        concurrency: config.worker.concurrency,
        pollIntervalMs: config.worker.pollIntervalMs,
        deadAfterMs: config.worker.deadAfterMs,
        processId,
        crontab: crontab({ retentionDays: project.retention.days }),
      });
    }
    if (mode === 'all' || mode === 'server') {
      const { createHttpServer, sendJson } = await import('./server/http.ts');
      http = createHttpServer({
        log,
        checks: {
          pool: db.pool,
          workerRunning: worker ? () => worker?.isRunning() ?? false : undefined,
          workerProblem: worker ? () => worker?.whyNotRunning() : undefined,
        },
      });
      for (const a of adapters) a.mount(http);
      for (const route of (await loadBots()).UNCONFIGURED_ROUTES) {
        if (adapters.some((a) => a.platform.name === route.platform)) continue;
        http.mount('POST', route.path, (_req, res) => sendJson(res, route.status, { error: route.message }));
      }
      // A platform outage at start-up must not stop Tollgate: requests are taken, messages catch up.
      for (const a of adapters) {
        await a.start().catch((e: unknown) => log.error({ err: e, platform: a.platform.name }, 'a chat platform could not be started; Tollgate runs on without it'));
      }
      const addr = await http.listen(config.port, config.host);
      url = `http://${addr.address}:${addr.port}`;
      log.info({ url }, 'HTTP server listening');
    }
  } catch (e) {
    await worker?.stop();
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
    worker,
    http,
    url,
    adapters,
    chat,
    stop: () =>
      (stopping ??= (async () => {
        for (const a of adapters) await a.stop().catch((e: unknown) => log.warn({ err: e, platform: a.platform.name }, 'chat platform stop'));
        await http?.close();
        await worker?.stop();
        await configHold.stop();
        await db.close();
      })()),
  };
}
