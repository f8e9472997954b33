/**
 * `tollgate delegate <principal> --until <YYYY-MM-DD>`, `tollgate delegate list` and
 * `tollgate delegate revoke <id>`: delegation at the shell (src/approvals/delegation.ts).
 *
 * The delegator is who the shell acts as: this OS user, or with `--as` a principal cliDelegates
 * lets it act for (TG_NOT_ALLOWED otherwise); the OS user is recorded with the delegation either
 * way. Revoking is for the delegator, the delegate or an operator.
 */
import type { Command } from 'commander';
import { cliActor, withApp, type CliContext } from '../context.ts';
import { toJson } from '../format.ts';
import { table } from '../table.ts';

export function registerDelegateCommands(program: Command, { io, lazy }: CliContext): void {
  const delegate = program
    .command('delegate')
    // Its own options (--until, --as, --json) only before a subcommand, so `delegate list --json`
    // and `delegate revoke <id> --as …` reach the subcommand.
    .enablePositionalOptions()
    .description('Let another principal decide approvals in your place until a date (at most 90 days); `delegate list`, `delegate revoke <id>`.')
    .argument('[principal]', 'who decides in your place: slack:<team>:<user>, teams:<tenant>:<aad-object-id>, cli:<host>:<user>')
    .option('--until <date>', 'the last day, YYYY-MM-DD (the delegation lasts to the end of that day, UTC)')
    .option('--as <principal>', 'who delegates, if cliDelegates lets this OS user act for it (default: this OS user)')
    .option('--json', 'print the delegation as JSON')
    .action(async (principal: string | undefined, opts: { until?: string; as?: string; json?: boolean }) => {
      const [{ TollgateError }, { parseUntil }] = await Promise.all([import('../../common/errors.ts'), import('../../intents/command.ts')]);
      if (!principal || opts.until === undefined) {
        throw new TollgateError(
          'TG_USAGE',
          'Say to whom and until when: `tollgate delegate <principal> --until YYYY-MM-DD` (or `delegate list`, `delegate revoke <id>`).',
        );
      }
      const endsAt = parseUntil(opts.until);
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const { createDelegation, describeDelegation } = await import('../../approvals/delegation.ts');
        const actor = await cliActor(app, opts.as);
        const d = await createDelegation(app.db.pool, { delegator: actor.principal, delegate: principal, endsAt, via: 'cli', osUser: actor.osUser });
        io.out(opts.json ? toJson(d, 2) : `Delegated: ${describeDelegation(d)}. Approvals that open until then list ${d.delegate} beside ${d.delegator}.`);
      });
    });
  delegate
    .command('list')
    .description('Delegations not ended or revoked.')
    .option('--for <principal>', 'only those this principal gave or received')
    .option('--json', 'print JSON')
    .action(async (opts: { for?: string; json?: boolean }) => {
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const [{ listDelegations, describeEnd }, { parsePrincipal }] = await Promise.all([
          import('../../approvals/delegation.ts'),
          import('../../common/principals.ts'),
        ]);
        const list = await listDelegations(app.db.pool, opts.for ? parsePrincipal(opts.for) : undefined);
        if (opts.json) io.out(toJson(list, 2));
        else if (list.length === 0) io.out('No delegations.');
        else
          io.out(
            table(
              ['DELEGATION', 'DELEGATOR', 'DELEGATE', 'UNTIL', 'VIA'],
              list.map((d) => [d.id, d.delegator, d.delegate, describeEnd(d.endsAt), d.via ?? '-']),
            ),
          );
      });
    });
  delegate
    .command('revoke')
    .description('End a delegation now (its delegator, its delegate or an operator).')
    .argument('<id>', 'delegation id (dlg_…)')
    .option('--as <principal>', 'who revokes, if cliDelegates lets this OS user act for it (default: this OS user)')
    .action(async (id: string, opts: { as?: string }) => {
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const [{ revokeDelegation, describeDelegation }, { isOperator }] = await Promise.all([
          import('../../approvals/delegation.ts'),
          import('../../intents/authorize.ts'),
        ]);
        const actor = await cliActor(app, opts.as);
        const d = await revokeDelegation(app.db.pool, id, actor.principal, isOperator(actor.principal, app.project));
        io.out(`Revoked: ${describeDelegation(d)}. Approvals already open keep their delegate; those that open from now on do not list them.`);
      });
    });
}
