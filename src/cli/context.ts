/**
 * What every command group of the `tollgate` command shares (src/cli/commands/*): where it
 * writes, the configuration and logger it loads when it runs, the app it opens for the length of
 * a command, and who the shell acts as.
 *
 * Every command imports what it uses when it runs (`await import`), not at the top of its module:
 * a one-shot command then loads neither the chat SDKs nor Graphile Worker (src/app.ts loads them
 * for the modes that run them), nor another command's modules, and starts in a fraction of the time.
 */
import os from 'node:os';
import type { App } from '../app.ts';
import type { Config } from '../config/config.ts';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type { Principal } from '../common/principals.ts';
import type { RunStatus } from '../db/queries/runs.ts';
import { STATUS_LABELS } from '../views/run-view.ts';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** What a command group is given to register its commands with. */
export interface CliContext {
  readonly io: Io;
  readonly env: NodeJS.ProcessEnv;
  /**
   * The configuration and a logger (`quiet`: warnings only, on stderr, unless LOG_LEVEL says otherwise).
   * A function property, not a method: the commands destructure it, and it uses no `this`.
   */
  readonly lazy: (quiet: boolean) => Promise<{ config: Config; log: Logger }>;
}

export function cliContext(io: Io, env: NodeJS.ProcessEnv): CliContext {
  return {
    io,
    env,
    lazy: async (quiet) => {
      const [{ loadConfig }, { createLogger }] = await Promise.all([import('../config/config.ts'), import('../common/log.ts')]);
      const config = loadConfig(env);
      const level = quiet && !env.LOG_LEVEL ? 'warn' : config.logLevel;
      return { config, log: createLogger({ level, format: config.logFormat, stderr: quiet }) };
    },
  };
}

export const MAX_LIST_LIMIT = 1000;
/** Every run status, from the labels the views keep for each (a Record over RunStatus, so complete). */
export const RUN_STATUSES = Object.keys(STATUS_LABELS) as RunStatus[];

export function listLimit(text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1 || Number(text) > MAX_LIST_LIMIT) {
    throw new TollgateError('TG_USAGE', `--limit must be a whole number from 1 to ${MAX_LIST_LIMIT}, not "${text}".`);
  }
  return Number(text);
}

export function runStatus(text: string): RunStatus {
  if (!(RUN_STATUSES as string[]).includes(text)) {
    throw new TollgateError('TG_USAGE', `--status must be one of ${RUN_STATUSES.join(', ')}; "${text}" is not a run status.`);
  }
  return text as RunStatus;
}

/** The shell's own identity: the operating system's user on this host. Nothing typed changes it. */
export function cliPrincipal(): Principal {
  return { platform: 'cli', tenant: os.hostname(), user: os.userInfo().username };
}

/**
 * Who a command acts as: this OS user, or with `--as` a principal the project configuration lets
 * this OS user act for (`cliDelegates`; refused with TG_NOT_ALLOWED otherwise). `osUser` is
 * recorded with whatever the command changes.
 */
export async function cliActor(app: App, as: string | undefined): Promise<{ principal: Principal; osUser: string }> {
  const { resolveCliActor } = await import('../intents/authorize.ts');
  return resolveCliActor(cliPrincipal(), as, app.project);
}

/** Opens the app without worker or server, runs `fn`, and closes it again. */
export async function withApp<T>(config: Config, log: Logger, fn: (app: App) => Promise<T>): Promise<T> {
  const { startApp } = await import('../app.ts');
  const app = await startApp({ config, log, mode: 'none' });
  try {
    return await fn(app);
  } finally {
    await app.stop();
  }
}
