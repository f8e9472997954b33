/**
 * `tollgate start`, `server` and `worker` (run Tollgate until a signal) and `migrate`.
 */
import type { Command } from 'commander';
import type { AppMode } from '../../app.ts';
import type { Config } from '../../config/config.ts';
import type { Logger } from '../../common/log.ts';
import { withApp, type CliContext } from '../context.ts';

export function registerServeCommands(program: Command, { io, lazy }: CliContext): void {
  program.command('start').description('Run the HTTP server and the worker in one process (npm start).').action(async () => {
    const { config, log } = await lazy(false);
    await serve(config, log, 'all');
  });
  program.command('server').description('Run the HTTP server only (scale it apart from workers).').action(async () => {
    const { config, log } = await lazy(false);
    await serve(config, log, 'server');
  });
  program.command('worker').description('Run a worker only (as many as you like, on any machine).').action(async () => {
    const { config, log } = await lazy(false);
    await serve(config, log, 'worker');
  });
  program.command('migrate').description('Apply database migrations, then exit.').action(async () => {
    const { config, log } = await lazy(false);
    await withApp(config, log, async () => io.out('Database is up to date.'));
  });
}

async function serve(config: Config, log: Logger, mode: AppMode): Promise<void> {
  // Last resort, for serving processes only. Database faults are handled where they happen
  // (src/worker/worker.ts, db/connect.ts), but libraries start promises nobody awaits (Graphile Worker
  // calls completeJob/failJob and its batchers that way), and Node ends the process on the first
  // such rejection with a raw stack. All state is in PostgreSQL, /readyz reports the database and
  // the worker, and the worker restarts itself: staying up and saying so beats exiting.
  process.on('unhandledRejection', (reason) => {
    log.error({ err: reason }, 'unhandled promise rejection (a bug: please report it); Tollgate keeps running');
  });
  const tracing = await (await import('../../telemetry/tracing.ts')).startTracing(config.tracing, log);
  const { startApp } = await import('../../app.ts');
  const app = await startApp({ config, log, mode });
  if (app.url) log.info(`Tollgate is up: ${app.url}/readyz`);
  await new Promise<void>((resolve) => {
    const onSignal = (sig: string) => {
      log.info({ signal: sig }, 'shutting down');
      app.stop().finally(() => tracing.shutdown()).then(resolve, (e: unknown) => {
        log.error({ err: e }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  });
}
