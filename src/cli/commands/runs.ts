/**
 * `tollgate run` (start a run) and `tollgate runs list|show|cancel|retry|resolve|export` (`retry --set`
 * is Edit and retry, `resolve` Resolve by hand: docs/operator-control.md).
 */
import type { Command } from 'commander';
import { TollgateError } from '../../common/errors.ts';
import { parseKeyValues } from '../../intents/command.ts';
import { isTerminalStatus } from '../../db/queries/runs.ts';
import { formatModelCalls, formatRunList, formatTimeline, requesterKeys, toJson } from '../format.ts';
import { formatRunApprovals, peopleOf } from '../approvals-format.ts';
import { cliActor, cliPrincipal, listLimit, MAX_LIST_LIMIT, RUN_STATUSES, runStatus, withApp, type CliContext } from '../context.ts';

export function registerRunCommands(program: Command, ctx: CliContext): void {
  registerStartRun(program, ctx);
  const runs = program.command('runs').description('Inspect and steer runs.');
  registerInspectRuns(runs, ctx);
  registerSteerRuns(runs, ctx);
  registerResolveRun(runs, ctx);
  registerExportRun(runs, ctx);
}

/** `tollgate run <workflow> key=value …`, with --wait to follow it to its end. */
function registerStartRun(program: Command, { io, lazy }: CliContext): void {
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
            io.out(opts.json ? toJson(detail) : formatTimeline(detail));
            if (detail.run.status !== 'succeeded') process.exitCode = 1;
            return;
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      });
    });
}

/** `runs list` and `runs show <id>`. */
function registerInspectRuns(runs: Command, { io, lazy }: CliContext): void {
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
        if (opts.json) return io.out(toJson(list, 2));
        const { selectNames } = await import('../../db/queries/people.ts');
        io.out(
          formatRunList(
            list,
            await selectNames(
              app.db.pool,
              list.flatMap((r) => requesterKeys(r.requester)),
            ),
          ),
        );
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
        const [{ listRunApprovals }, { listModelCalls }, { selectNames }] = await Promise.all([
          import('../../approvals/index.ts'),
          import('../../model/record.ts'),
          import('../../db/queries/people.ts'),
        ]);
        const [approvals, modelCalls] = await Promise.all([listRunApprovals(app.db.pool, id), listModelCalls(app.db.pool, id)]);
        // People by name: the requester and the deciders, as the directory calls them.
        const names = await selectNames(app.db.pool, [...requesterKeys(detail.run.requester), ...peopleOf(approvals)]);
        io.out(
          opts.json
            ? toJson({ ...detail, approvals, modelCalls }, 2)
            : formatTimeline(detail, names) + formatModelCalls(modelCalls) + formatRunApprovals(approvals, names),
        );
      });
    });
}

/** `runs cancel <id>` and `runs retry <id>`, as this OS user or a principal it may act for. */
function registerSteerRuns(runs: Command, { io, lazy }: CliContext): void {
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
    .option('--set <key=value>', 'Edit and retry: change this input first (repeat for more; key= removes it)', collect, [])
    .option('--dry-run', 'with --set: say what the edit would run again and undo, and change nothing')
    .action(async (id: string, opts: { as?: string; set: string[]; dryRun?: boolean }) => {
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const actor = await cliActor(app, opts.as);
        if (opts.set.length > 0 || opts.dryRun) return editAndRetry(app, io, id, actor, opts.set, !!opts.dryRun);
        const { run } = await app.runtime.getRun(id);
        await app.runtime.retry(id, actor.principal, { via: 'cli', osUser: actor.osUser });
        io.out(
          run.status === 'dead_letter'
            ? `${id} taken out of dead letter and queued again; it resumes where its workers were interrupted, with its recoveries counted afresh.`
            : `${id} queued again; it resumes at the step that failed.`,
        );
      });
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

type CliApp = Parameters<Parameters<typeof withApp>[2]>[0];

/** `runs retry <id> --set key=value …`: the plan, then (unless --dry-run) the edit. */
async function editAndRetry(app: CliApp, io: CliContext['io'], id: string, actor: Awaited<ReturnType<typeof cliActor>>, sets: string[], dryRun: boolean) {
  const values: Record<string, string> = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new TollgateError('TG_USAGE', `--set takes key=value (key= to remove it), not "${s}".`);
    values[s.slice(0, eq)] = s.slice(eq + 1);
  }
  if (dryRun) {
    const plan = await app.runtime.planEdit(id, actor.principal, values);
    io.out(`Dry run, nothing changed. ${plan.summary}`);
    return;
  }
  const { plan } = await app.runtime.retryWithEdits(id, actor.principal, values, { via: 'cli', osUser: actor.osUser });
  io.out(`${id} edited and queued again. ${plan.summary}`);
}

/** `runs resolve <id>`: Resolve by hand (--output), Skip and compensate (--skip) or Give up (--give-up); operators only. */
function registerResolveRun(runs: Command, { io, lazy }: CliContext): void {
  runs
    .command('resolve')
    .description("Put a run that failed at a resolvable step right by hand (operators): --output '<json>', --skip or --give-up, with --reason.")
    .argument('<id>')
    .option('--output <json>', 'Resolve by hand: the failed step is done, with this output (JSON)')
    .option('--skip', 'Skip and compensate: end the run, undoing its completed steps')
    .option('--give-up', 'Give up: end the run failed, nothing undone, for a person to finish')
    .requiredOption('--reason <text>', 'why (recorded in the audit trail)')
    .option('--as <principal>', 'who resolves, if cliDelegates lets this OS user act for it (default: this OS user)')
    .action(async (id: string, opts: { output?: string; skip?: boolean; giveUp?: boolean; reason: string; as?: string }) => {
      const chosen = [opts.output !== undefined, !!opts.skip, !!opts.giveUp].filter(Boolean).length;
      if (chosen !== 1) throw new TollgateError('TG_USAGE', 'Give exactly one of --output <json>, --skip or --give-up.');
      let output: unknown;
      if (opts.output !== undefined) {
        try {
          output = JSON.parse(opts.output);
        } catch (e) {
          throw new TollgateError('TG_USAGE', `--output must be JSON, such as '{"status": 200}': ${(e as Error).message}.`);
        }
      }
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const actor = await cliActor(app, opts.as);
        const how = { via: 'cli', osUser: actor.osUser };
        if (opts.output !== undefined) {
          await app.runtime.resolve(id, actor.principal, { action: 'by-hand', output, reason: opts.reason }, how);
          io.out(`${id}: the failed step is marked done by hand; the run continues from the next step.`);
        } else if (opts.skip) {
          await app.runtime.resolve(id, actor.principal, { action: 'skip', reason: opts.reason }, how);
          io.out(`${id}: skipped; its completed steps are being undone and it ends compensated.`);
        } else {
          await app.runtime.resolve(id, actor.principal, { action: 'give-up', reason: opts.reason }, how);
          io.out(`${id}: given up; it stays failed with nothing undone, for a person to finish.`);
        }
      });
    });
}

// Evidence bundles (issue 10, src/audit/bundle*.ts): `runs export` here, `audit verify --bundle` in ./audit.ts.
function registerExportRun(runs: Command, { io, lazy }: CliContext): void {
  runs
    .command('export')
    .description("Write the run's evidence bundle: one JSON file an auditor can verify offline with `tollgate audit verify --bundle`.")
    .argument('<id>')
    .option('--out <file>', 'write it to this file (default: standard output)')
    .option('--force', 'overwrite the --out file if it exists')
    .action(async (id: string, opts: { out?: string; force?: boolean }) => {
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const { exportEvidenceBundle } = await import('../../audit/bundle.ts');
        const { formatPrincipal } = await import('../../common/principals.ts');
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
}
