/**
 * `tollgate start`, `server` and `worker` (run Tollgate until a signal) and `migrate`.
 */
import type { Command } from 'commander';
import type { App, AppMode } from '../../app.ts';
import type { Config } from '../../config/config.ts';
import type { Logger } from '../../common/log.ts';
import { withApp, type CliContext } from '../context.ts';

export function registerServeCommands(program: Command, { io, lazy }: CliContext): void {
  program
    .command('start')
    .description('Run the HTTP server and the worker in one process (npm start).')
    .action(async () => {
      const { config, log } = await lazy(false);
      await serve(config, log, 'all');
    });
  program
    .command('server')
    .description('Run the HTTP server only (scale it apart from workers).')
    .action(async () => {
      const { config, log } = await lazy(false);
      await serve(config, log, 'server');
    });
  program
    .command('worker')
    .description('Run a worker only (as many as you like, on any machine).')
    .action(async () => {
      const { config, log } = await lazy(false);
      await serve(config, log, 'worker');
    });
  program
    .command('migrate')
    .description('Apply database migrations, then exit.')
    .action(async () => {
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
  const code = await untilStopped(app, config.shutdownTimeoutMs, log, () => tracing.shutdown());
  process.exitCode = code;
}

/** How long before the deadline the shutdown gives up waiting and gives back what still runs (a quarter of a short timeout). */
const abandonBeforeDeadlineMs = (timeoutMs: number) => Math.min(1000, Math.floor(timeoutMs / 4));

/**
 * Runs until SIGTERM or SIGINT, then shuts down within `timeoutMs`: gracefully (App.stop) while
 * there is time; a second before the deadline, every connection is closed and the worker's jobs are
 * given back (App.abandon), and the process exits at the deadline whatever is left. A second signal
 * exits at once (jobs still locked are then unlocked once WORKER_DEAD_AFTER_MS has passed).
 * Resolves with the exit code: 0 after a graceful stop, 1 otherwise.
 */
function untilStopped(app: App, timeoutMs: number, log: Logger, flush: () => Promise<void>): Promise<number> {
  return new Promise<number>((resolve) => {
    const onSignal = (sig: string) => {
      log.info({ signal: sig, timeoutMs }, 'shutting down');
      const abandonAt = setTimeout(
        () => {
          log.warn({ timeoutMs }, 'shutdown is not finished; closing every connection and giving back the jobs still running');
          app.abandon().then(
            () => resolve(1),
            (e: unknown) => {
              log.error({ err: e }, 'could not give back the jobs still running; they are unlocked once WORKER_DEAD_AFTER_MS has passed');
              resolve(1);
            },
          );
        },
        timeoutMs - abandonBeforeDeadlineMs(timeoutMs),
      );
      const deadline = setTimeout(() => {
        log.error({ timeoutMs }, 'shutdown timeout reached; exiting');
        process.exit(1);
      }, timeoutMs);
      app
        .stop()
        .then(flush)
        .then(
          () => resolve(0),
          (e: unknown) => {
            log.error({ err: e }, 'shutdown failed');
            resolve(1);
          },
        )
        .finally(() => {
          clearTimeout(abandonAt);
          deadline.unref(); // whatever is left (a stuck library socket) must not hold the exit
        });
    };
    const exitNow = (sig: string) => {
      log.warn({ signal: sig }, 'second signal: exiting now');
      process.exit(1);
    };
    let signalled = false;
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      process.on(sig, () => {
        if (signalled) return exitNow(sig);
        signalled = true;
        onSignal(sig);
      });
    }
  });
}
