/**
 * The CLI run in-process against a test database, as the shell would run it: its exit code and
 * what it printed. The data directory is one that does not exist, so a command that would boot
 * the embedded database fails loudly instead.
 */
import { main } from '../../src/cli/main.ts';
import { TEST_AUDIT_ENV } from './db.ts';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export function inProcessCli(db: () => { url: string }, env: Record<string, string> = {}): (...args: string[]) => Promise<CliResult> {
  return async (...args) => {
    let out = '';
    let err = '';
    const code = await main(
      ['node', 'tollgate', ...args],
      { out: (s) => (out += `${s}\n`), err: (s) => (err += s) },
      {
        DATABASE_URL: db().url,
        ...TEST_AUDIT_ENV,
        LOG_LEVEL: 'silent',
        TOLLGATE_DATA_DIR: '/nonexistent-tollgate-cli-test',
        ...env,
      },
    );
    return { code, out, err };
  };
}
