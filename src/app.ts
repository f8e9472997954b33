/**
 * Boots Tollgate: database (embedded or DATABASE_URL), migrations, workflow registry, runtime,
 * and, by mode, the worker and/or the HTTP server. `stop()` shuts down in order: stop taking
 * HTTP requests and jobs, let running steps finish (or release them), close the pool, stop the
 * embedded database.
 */
import type { Config } from './config.ts';
import { openDatabase, type Database } from './db/connect.ts';
import { migrate } from './db/migrate.ts';
import type { Logger } from './log.ts';
import type { ProjectConfig } from './project-config.ts';
import { loadProject, type Project } from './project.ts';
import { WorkflowRegistry } from './runtime/registry.ts';
import { Runtime } from './runtime/runtime.ts';
import { createHttpServer, sendJson, type HttpServer } from './server/http.ts';
import { newProcessId, startWorker, type WorkerHandle } from './worker.ts';
import { builtinWorkflows } from './workflows/index.ts';
import { builtinToolRegistry } from './tools/index.ts';
import { crontab, taskList } from '../jobs/index.ts';
// The boot is the composition root: the one place in src/ that knows the adapters exist.
import { createSlackAdapter, type SlackAdapter } from '../bots/slack/index.ts';

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
  /** Present when Slack is configured (SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET or SLACK_APP_TOKEN). */
  readonly slack: SlackAdapter | undefined;
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
  const registry = buildRegistry(loaded);
  const db = opts.db ?? (await openDatabase(config, log));
  try {
    await migrate(db.pool, log);
  } catch (e) {
    await db.close();
    throw e;
  }
  const runtime = new Runtime({ pool: db.pool, registry, log, project, tools: builtinToolRegistry().register(...loaded.tools) });
  const slack = mode === 'none' ? undefined : createSlackAdapter({ config: config.slack, pool: db.pool, runtime, registry, project, log });

  let worker: WorkerHandle | undefined;
  let http: HttpServer | undefined;
  let url: string | undefined;
  try {
    if (mode === 'all' || mode === 'worker') {
      const processId = newProcessId();
      worker = await startWorker({
        pool: db.pool,
        log,
        tasks: taskList({ runtime, processId, slack: slack?.deliverer }),
        concurrency: config.worker.concurrency,
        pollIntervalMs: config.worker.pollIntervalMs,
        deadAfterMs: config.worker.deadAfterMs,
        processId,
        crontab: crontab({ retentionDays: project.retention.days, slack: slack !== undefined }),
      });
    }
    if (mode === 'all' || mode === 'server') {
      http = createHttpServer({ log, checks: { pool: db.pool, workerRunning: worker ? () => worker?.isRunning() ?? false : undefined } });
      if (slack) slack.mount(http);
      else {
        http.mount('POST', '/slack/events', (_req, res) =>
          sendJson(res, 503, { error: 'Slack is not configured here: set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (or SLACK_APP_TOKEN for Socket Mode) and restart.' }),
        );
      }
      // A Slack outage at start-up must not stop Tollgate: requests are taken, messages catch up.
      await slack?.start().catch((e: unknown) => log.error({ err: e }, 'Slack could not be started; Tollgate runs on without it'));
      const addr = await http.listen(config.port, config.host);
      url = `http://${addr.address}:${addr.port}`;
      log.info({ url }, 'HTTP server listening');
    }
  } catch (e) {
    await worker?.stop();
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
    slack,
    stop: () =>
      (stopping ??= (async () => {
        await slack?.stop().catch((e: unknown) => log.warn({ err: e }, 'Slack stop'));
        await http?.close();
        await worker?.stop();
        await db.close();
      })()),
  };
}
