/**
 * `tollgate audit verify` (the event log's hash chains, or with --bundle an evidence bundle,
 * offline) and `tollgate audit checkpoint`.
 */
import type { Command } from 'commander';
import { TollgateError } from '../../common/errors.ts';
import { withApp, type CliContext, type Io } from '../context.ts';

export function registerAuditCommands(program: Command, { io, env, lazy }: CliContext): void {
  const audit = program.command('audit').description('The tamper-evident event log.');
  audit
    .command('verify')
    .description('Verify every hash chain of the event log; names the first broken link (exit 1). With --bundle, check an evidence bundle offline instead.')
    .option('--json', 'print JSON')
    .option('--bundle <file>', 'verify this evidence bundle (tollgate runs export) offline: no database is opened')
    .option('--without-key', 'with --bundle and no audit key at hand: check only what can be checked without it')
    .action(async (opts: { json?: boolean; bundle?: string; withoutKey?: boolean }) => {
      if (opts.bundle !== undefined) return verifyBundleCommand(io, env, opts.bundle, opts);
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const { formatVerifyReport, verifyAuditChain } = await import('../../audit/verify.ts');
        const report = await verifyAuditChain(app.db.pool);
        if (!report.ok) {
          throw new TollgateError('TG_AUDIT_BROKEN', opts.json ? JSON.stringify(report) : formatVerifyReport(report), { ...report.broken });
        }
        io.out(opts.json ? JSON.stringify(report, null, 2) : formatVerifyReport(report));
      });
    });
  audit
    .command('checkpoint')
    .description('Write a keyed checkpoint of the chains changed since the last one now (the worker does it every minute).')
    .action(async () => {
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const { writeCheckpoint } = await import('../../audit/checkpoint.ts');
        const named = await writeCheckpoint(app.db.pool);
        io.out(named === 0 ? 'Nothing changed since the last checkpoint; none written.' : `Checkpoint written: ${named} chain${named === 1 ? '' : 's'} named.`);
      });
    });
}

/**
 * `audit verify --bundle <file>`: offline, so it never calls `withApp` (which would open, or start,
 * a database). The audit key is found as `audit verify` finds it; without one, the links and seals
 * cannot be checked, and the command says so instead of passing unless --without-key accepts that.
 */
async function verifyBundleCommand(io: Io, env: NodeJS.ProcessEnv, file: string, opts: { json?: boolean; withoutKey?: boolean }): Promise<void> {
  const [{ loadConfig }, { offlineAuditKey }, { formatEvidenceReport, readBundleFile, verifyEvidenceBundle }] = await Promise.all([
    import('../../config/config.ts'),
    import('../../audit/key.ts'),
    import('../../audit/bundle-verify.ts'),
  ]);
  const bundle = await readBundleFile(file); // a file that is no bundle is told first, key or not
  const config = loadConfig(env);
  const auditKey = await offlineAuditKey({ keyHex: config.audit.keyHex, dataDir: config.dataDir });
  if (!auditKey && !opts.withoutKey) {
    throw new TollgateError(
      'TG_AUDIT_KEY_INVALID',
      `Verifying ${file} needs the audit key its links and seals were made with: set TOLLGATE_AUDIT_KEY (or TOLLGATE_DATA_DIR to the data dir holding audit.key), ` +
        'or add --without-key to check only what anyone can recompute (digests, parameter hashes, agreement with the chained events).',
    );
  }
  const report = verifyEvidenceBundle(bundle, { auditKey });
  const text = opts.json ? JSON.stringify(report, null, 2) : formatEvidenceReport(report);
  if (!report.ok) throw new TollgateError('TG_AUDIT_BROKEN', text, { field: report.problems[0]?.field });
  io.out(text);
}
