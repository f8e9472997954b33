/**
 * The `tollgate` command. `start` (server + worker), `server` and `worker` run Tollgate; the
 * others act on the same database: with the embedded PostgreSQL they find the one `npm start` is
 * running (through TOLLGATE_DATA_DIR), or start it themselves for the length of the command.
 * Runs started here are executed by whichever worker is running.
 */
import os from 'node:os';
import { Command } from 'commander';
import type { App, AppMode } from '../app.ts';
import type { Config } from '../config/config.ts';
import { isTollgateError, TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type { Principal } from '../common/principals.ts';
import { CommandSyntaxError, parseKeyValues } from '../intents/command.ts';
import { isTerminalStatus, type RunStatus } from '../db/queries/runs.ts';
import { formatModelCalls, formatRunList, formatTimeline } from './format.ts';
import { formatApprovalList, formatRunApprovals } from './approvals-format.ts';
import { STATUS_LABELS } from '../views/run-view.ts';

// Every command imports what it uses when it runs (`await import`), not here: a one-shot command
// then loads neither the chat SDKs nor Graphile Worker (src/app.ts loads them for the modes that
// run them), nor another command's modules, and starts in a fraction of the time.

const MAX_LIST_LIMIT = 1000;
/** Every run status, from the labels the views keep for each (a Record over RunStatus, so complete). */
const RUN_STATUSES = Object.keys(STATUS_LABELS) as RunStatus[];

function listLimit(text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1 || Number(text) > MAX_LIST_LIMIT) {
    throw new TollgateError('TG_USAGE', `--limit must be a whole number from 1 to ${MAX_LIST_LIMIT}, not "${text}".`);
  }
  return Number(text);
}

function runStatus(text: string): RunStatus {
  if (!(RUN_STATUSES as string[]).includes(text)) {
    throw new TollgateError('TG_USAGE', `--status must be one of ${RUN_STATUSES.join(', ')}; "${text}" is not a run status.`);
  }
  return text as RunStatus;
}

/** The shell's own identity: the operating system's user on this host. Nothing typed changes it. */
function cliPrincipal(): Principal {
  return { platform: 'cli', tenant: os.hostname(), user: os.userInfo().username };
}

/**
 * Who a command acts as: this OS user, or with `--as` a principal the project configuration lets
 * this OS user act for (`cliDelegates`; refused with TG_NOT_ALLOWED otherwise). `osUser` is
 * recorded with whatever the command changes.
 */
async function cliActor(app: App, as: string | undefined): Promise<{ principal: Principal; osUser: string }> {
  const { resolveCliActor } = await import('../intents/authorize.ts');
  return resolveCliActor(cliPrincipal(), as, app.project);
}

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** Opens the app without worker or server, runs `fn`, and closes it again. */
async function withApp<T>(config: Config, log: Logger, fn: (app: App) => Promise<T>): Promise<T> {
  const { startApp } = await import('../app.ts');
  const app = await startApp({ config, log, mode: 'none' });
  try {
    return await fn(app);
  } finally {
    await app.stop();
  }
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
  const tracing = await (await import('../telemetry/tracing.ts')).startTracing(config.tracing, log);
  const { startApp } = await import('../app.ts');
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

export function buildCli(io: Io, env: NodeJS.ProcessEnv = process.env): Command {
  const program = new Command('tollgate')
    .description('Durable workflows behind Slack and Teams: runs, approvals, audit.')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });

  const lazy = async (quiet: boolean) => {
    const [{ loadConfig }, { createLogger }] = await Promise.all([import('../config/config.ts'), import('../common/log.ts')]);
    const config = loadConfig(env);
    const level = quiet && !env.LOG_LEVEL ? 'warn' : config.logLevel;
    return { config, log: createLogger({ level, format: config.logFormat, stderr: quiet }) };
  };

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

  program
    .command('workflows')
    .description('List workflows and their inputs.')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const [{ loadConfig }, { loadProject }, { buildRegistry }] = await Promise.all([import('../config/config.ts'), import('../config/project.ts'), import('../app.ts')]);
      const config = loadConfig(env);
      const registry = buildRegistry(await loadProject(config.projectConfigPath));
      const list = registry.latest().map((w) => ({
        name: w.name,
        version: w.version,
        description: w.description,
        input: describeInput(w.input),
      }));
      if (opts.json) return io.out(JSON.stringify(list, null, 2));
      for (const w of list) {
        io.out(`${w.name} (v${w.version}): ${w.description}`);
        for (const f of w.input) io.out(`    ${f.name}${f.required ? '' : '?'}  ${f.description ?? ''}`.trimEnd());
      }
    });

  program
    .command('run')
    .description('Start a run: tollgate run <workflow> key=value ...')
    .argument('<workflow>')
    .argument('[params...]', 'inputs as key=value')
    .option('--as <principal>', 'requester, if cliDelegates lets this OS user act for it (default: this OS user)')
    .option('--wait', 'wait until the run ends and print its timeline')
    .option('--json', 'print JSON')
    .action(async (workflow: string, params: string[], opts: { as?: string; wait?: boolean; json?: boolean }) => {
      const { config, log } = await lazy(true);
      const input = parseKeyValues(params);
      await withApp(config, log, async (app) => {
        const actor = await cliActor(app, opts.as);
        const run = await app.runtime.startRun({ workflow, input, requester: actor.principal, origin: { platform: 'cli', osUser: actor.osUser } });
        if (!opts.wait) {
          if (opts.json) io.out(JSON.stringify({ id: run.id, status: run.status }));
          else io.out(`${run.id} queued (${run.workflow}@v${run.workflow_version}). Follow it with: tollgate runs show ${run.id}`);
          return;
        }
        for (;;) {
          const detail = await app.runtime.getRun(run.id);
          if (isTerminalStatus(detail.run.status)) {
            io.out(opts.json ? JSON.stringify(detail) : formatTimeline(detail));
            if (detail.run.status !== 'succeeded') process.exitCode = 1;
            return;
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      });
    });

  const runs = program.command('runs').description('Inspect and steer runs.');
  runs
    .command('list')
    .option('--status <status>', `only runs with this status (${RUN_STATUSES.join(', ')})`)
    .option('--workflow <name>', 'only runs of this workflow')
    .option('--limit <n>', `how many, 1 to ${MAX_LIST_LIMIT}`, '20')
    .option('--json', 'print JSON')
    .action(async (opts: { status?: string; workflow?: string; limit: string; json?: boolean }) => {
      // Checked before anything opens: a bad option is the caller's mistake, told in one sentence.
      const limit = listLimit(opts.limit);
      const status = opts.status === undefined ? undefined : runStatus(opts.status);
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const list = await app.runtime.listRuns({ status, workflow: opts.workflow, limit });
        io.out(opts.json ? JSON.stringify(list, null, 2) : formatRunList(list));
      });
    });
  runs
    .command('show')
    .argument('<id>')
    .option('--json', 'print JSON (run, steps, events, approvals, modelCalls)')
    .action(async (id: string, opts: { json?: boolean }) => {
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const detail = await app.runtime.getRun(id);
        const [{ listRunApprovals }, { listModelCalls }] = await Promise.all([import('../approvals/index.ts'), import('../model/record.ts')]);
        const [approvals, modelCalls] = await Promise.all([listRunApprovals(app.db.pool, id), listModelCalls(app.db.pool, id)]);
        io.out(
          opts.json
            ? JSON.stringify({ ...detail, approvals, modelCalls }, null, 2)
            : formatTimeline(detail) + formatModelCalls(modelCalls) + formatRunApprovals(approvals),
        );
      });
    });
  runs
    .command('cancel')
    .argument('<id>')
    .option('--as <principal>', 'who cancels, if cliDelegates lets this OS user act for it (default: this OS user)')
    .action(async (id: string, opts: { as?: string }) => {
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const actor = await cliActor(app, opts.as);
        await app.runtime.cancel(id, actor.principal, { via: 'cli', osUser: actor.osUser });
        io.out(`Cancellation of ${id} requested; it stops at its next step boundary and undoes completed steps that have a compensation.`);
      });
    });
  runs
    .command('retry')
    .argument('<id>')
    .option('--as <principal>', 'who retries, if cliDelegates lets this OS user act for it (default: this OS user)')
    .action(async (id: string, opts: { as?: string }) => {
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const actor = await cliActor(app, opts.as);
        const { run } = await app.runtime.getRun(id);
        await app.runtime.retry(id, actor.principal, { via: 'cli', osUser: actor.osUser });
        io.out(
          run.status === 'dead_letter'
            ? `${id} taken out of dead letter and queued again; it resumes where its workers were interrupted, with its recoveries counted afresh.`
            : `${id} queued again; it resumes at the step that failed.`,
        );
      });
    });

  // Evidence bundles (issue 10, src/audit/bundle*.ts): `runs export` here, `audit verify --bundle` below.
  runs
    .command('export')
    .description("Write the run's evidence bundle: one JSON file an auditor can verify offline with `tollgate audit verify --bundle`.")
    .argument('<id>')
    .option('--out <file>', 'write it to this file (default: standard output)')
    .option('--force', 'overwrite the --out file if it exists')
    .action(async (id: string, opts: { out?: string; force?: boolean }) => {
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const { exportEvidenceBundle } = await import('../audit/bundle.ts');
        const { formatPrincipal } = await import('../common/principals.ts');
        // Who may export which run: as `runs show`, whoever can reach the database at this shell.
        const bundle = await exportEvidenceBundle(app.db.pool, id, { registry: app.registry, tools: app.tools, exportedBy: formatPrincipal(cliPrincipal()) });
        const text = `${JSON.stringify(bundle, null, 2)}\n`;
        if (!opts.out) return io.out(text.trimEnd());
        const { writeFile } = await import('node:fs/promises');
        try {
          // 'wx' refuses an existing file: an earlier bundle is evidence too, not overwritten by accident.
          await writeFile(opts.out, text, { flag: opts.force ? 'w' : 'wx' });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
            throw new TollgateError('TG_USAGE', `${opts.out} already exists; nothing was written. Choose another --out file, or add --force to overwrite it.`);
          }
          throw new TollgateError('TG_USAGE', `Cannot write ${opts.out}: ${(e as Error).message}.`);
        }
        io.out(
          `Wrote the evidence bundle of ${id} to ${opts.out}: ${bundle.chain.events.length} events, ${bundle.approvals.length} approval(s), ` +
            `${bundle.steps.length} steps. Check it with: tollgate audit verify --bundle ${opts.out}`,
        );
      });
    });

  const approvals = program.command('approvals').description('Approval gates waiting for a decision.');
  approvals
    .command('list')
    .option('--as <principal>', 'only those this principal may still decide')
    .option('--json', 'print JSON')
    .action(async (opts: { as?: string; json?: boolean }) => {
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const [{ listPendingApprovals }, { parsePrincipal }] = await Promise.all([import('../approvals/index.ts'), import('../common/principals.ts')]);
        const list = await listPendingApprovals(app.db.pool, opts.as ? parsePrincipal(opts.as) : undefined);
        io.out(opts.json ? JSON.stringify(list, null, 2) : formatApprovalList(list));
      });
    });
  approvals
    .command('show')
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const { getApproval } = await import('../approvals/index.ts');
        const view = await getApproval(app.db.pool, id);
        if (!view) throw new TollgateError('TG_APPROVAL_NOT_FOUND', `No approval with id "${id}". List pending approvals with \`tollgate approvals list\`.`);
        io.out(opts.json ? JSON.stringify(view, null, 2) : formatRunApprovals([view]).trimStart());
      });
    });

  // Decisions at the shell are this OS user's, or (with --as) a principal cliDelegates lets it act
  // for; either way the decision is recorded `via: cli` with the OS user who typed it.
  for (const decision of ['approve', 'reject'] as const) {
    program
      .command(decision)
      .description(`${decision === 'approve' ? 'Approve' : 'Reject'} an approval as a principal (exit 1 with the reason when refused).`)
      .argument('<id>', 'approval id (apr_…)')
      .option('--as <principal>', 'who decides, if cliDelegates lets this OS user act for it (default: this OS user)')
      .option('--comment <text>', 'a comment kept with the decision')
      .option('--json', 'print the outcome as JSON')
      .action(async (id: string, opts: { as?: string; comment?: string; json?: boolean }) => {
        const { config, log } = await lazy(true);
        await withApp(config, log, async (app) => {
          const actor = await cliActor(app, opts.as);
          const outcome = await app.runtime.decide(id, actor.principal, decision, opts.comment, { via: 'cli', osUser: actor.osUser });
          if (outcome.kind !== 'recorded' && outcome.kind !== 'already_recorded') {
            throw new TollgateError('TG_APPROVAL_REFUSED', `Refused (${outcome.kind}): ${outcome.message}`, { approvalId: id, outcome: outcome.kind });
          }
          io.out(opts.json ? JSON.stringify(outcome, null, 2) : outcome.message);
        });
      });
  }

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
        const { formatVerifyReport, verifyAuditChain } = await import('../audit/verify.ts');
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
        const { writeCheckpoint } = await import('../audit/checkpoint.ts');
        const named = await writeCheckpoint(app.db.pool);
        io.out(named === 0 ? 'Nothing changed since the last checkpoint; none written.' : `Checkpoint written: ${named} chain${named === 1 ? '' : 's'} named.`);
      });
    });

  return program;
}

/**
 * `audit verify --bundle <file>`: offline, so it never calls `withApp` (which would open, or start,
 * a database). The audit key is found as `audit verify` finds it; without one, the links and seals
 * cannot be checked, and the command says so instead of passing unless --without-key accepts that.
 */
async function verifyBundleCommand(io: Io, env: NodeJS.ProcessEnv, file: string, opts: { json?: boolean; withoutKey?: boolean }): Promise<void> {
  const [{ loadConfig }, { offlineAuditKey }, { formatEvidenceReport, readBundleFile, verifyEvidenceBundle }] = await Promise.all([
    import('../config/config.ts'),
    import('../audit/key.ts'),
    import('../audit/bundle-verify.ts'),
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

export function describeInput(schema: unknown): { name: string; required: boolean; description?: string }[] {
  const shape = (schema as { shape?: Record<string, { isOptional?: () => boolean; description?: string }> }).shape;
  if (!shape) return [];
  return Object.entries(shape).map(([name, field]) => ({
    name,
    required: !(field.isOptional?.() ?? false),
    description: field.description,
  }));
}

const stdio: Io = { out: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`), err: (s) => process.stderr.write(s) };

/** Runs the CLI and returns its exit code; `io` and `env` are injectable for tests. */
export async function main(argv: string[], io: Io = stdio, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const program = buildCli(io, env);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') return 0;
    if (typeof code === 'string' && code.startsWith('commander.')) return 2;
    if (isTollgateError(e) || e instanceof CommandSyntaxError) {
      io.err(`${e.message}\n`);
      return 1;
    }
    io.err(`${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

// Run when executed directly (tsx src/cli/main.ts …, node dist/src/cli/main.js …); bin/tollgate.js calls main().
if (process.argv[1] && /cli[\\/]main\.[jt]s$/.test(process.argv[1])) {
  main(process.argv).then((code) => process.exit(code));
}
