import { createLogger, type Logger } from '../../src/common/log.ts';

/** Quiet by default; TEST_LOG_LEVEL=debug shows what the runtime did. */
export function testLogger(): Logger {
  return createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', format: 'json' });
}
