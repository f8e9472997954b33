/**
 * The console's bind rule: on a loopback address (the default `HOST=127.0.0.1`) only this machine
 * reaches it; bound to anything else, it would show every run's inputs, outputs and approvals to
 * the network, so a process that would serve it there without `TOLLGATE_CONSOLE_TOKEN` refuses to
 * start.
 */
import { TollgateError } from '../common/errors.ts';
import { isLoopbackHost } from '../common/loopback.ts';

/** Throws when the HTTP server would serve the console beyond this machine without a token. */
export function checkConsoleBind(config: { host: string; console: { token: string | undefined } }): void {
  if (config.console.token || isLoopbackHost(config.host)) return;
  throw new TollgateError(
    'TG_CONFIG_INVALID',
    `HOST=${config.host} serves the web console (/console) beyond this machine, so it needs TOLLGATE_CONSOLE_TOKEN: ` +
      'set TOLLGATE_CONSOLE_TOKEN to a secret of at least 16 characters (e.g. `openssl rand -hex 32`), or bind to 127.0.0.1. Nothing was started.',
    { host: config.host, variable: 'TOLLGATE_CONSOLE_TOKEN' },
  );
}
