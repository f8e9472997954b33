/**
 * Structured logging with pino: JSON when stdout is not a terminal, pretty in one. Run-scoped
 * lines carry `runId` (and `step` inside a step) as fields, never in the text. Secrets are
 * removed by pino's redaction before a line is written.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths pino blanks out wherever they appear in a logged object. */
export const REDACT_PATHS = [
  'token',
  'botToken',
  'appToken',
  'signingSecret',
  'password',
  'apiKey',
  'authorization',
  'secret',
  '*.token',
  '*.botToken',
  '*.appToken',
  '*.signingSecret',
  '*.password',
  '*.apiKey',
  '*.authorization',
  '*.secret',
  '*.headers.authorization',
  '*.headers["x-slack-signature"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'connectionString',
  '*.connectionString',
  'databaseUrl',
  '*.databaseUrl',
];

export interface LogOptions {
  level: string;
  format?: 'json' | 'pretty' | undefined;
  destination?: pino.DestinationStream;
  /** Write to stderr (CLI commands keep stdout for their output). */
  stderr?: boolean;
}

export function createLogger(opts: LogOptions): Logger {
  const tty = opts.stderr ? process.stderr.isTTY : process.stdout.isTTY;
  const pretty = opts.format ? opts.format === 'pretty' : Boolean(tty);
  const base = { level: opts.level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { pid: process.pid } };
  if (opts.destination) return pino(base, opts.destination);
  if (pretty) {
    return pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l', destination: opts.stderr ? 2 : 1 },
      },
    });
  }
  return opts.stderr ? pino(base, pino.destination(2)) : pino(base);
}
