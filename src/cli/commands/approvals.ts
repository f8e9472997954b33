/**
 * `tollgate approvals list|show` and the decisions `tollgate approve|reject`.
 */
import type { Command } from 'commander';
import { TollgateError } from '../../common/errors.ts';
import { formatApprovalList, formatRunApprovals, peopleOf } from '../approvals-format.ts';
import { cliActor, withApp, type CliContext } from '../context.ts';
import { toJson } from '../format.ts';

export function registerApprovalCommands(program: Command, { io, lazy }: CliContext): void {
  const approvals = program.command('approvals').description('Approval gates waiting for a decision.');
  approvals
    .command('list')
    .option('--as <principal>', 'only those this principal may still decide')
    .option('--json', 'print JSON')
    .action(async (opts: { as?: string; json?: boolean }) => {
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const [{ listPendingApprovals }, { parsePrincipal }] = await Promise.all([import('../../approvals/index.ts'), import('../../common/principals.ts')]);
        const list = await listPendingApprovals(app.db.pool, opts.as ? parsePrincipal(opts.as) : undefined);
        io.out(opts.json ? toJson(list, 2) : formatApprovalList(list));
      });
    });
  approvals
    .command('show')
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const [{ getApproval }, { selectNames }] = await Promise.all([import('../../approvals/index.ts'), import('../../db/queries/people.ts')]);
        const view = await getApproval(app.db.pool, id);
        if (!view) throw new TollgateError('TG_APPROVAL_NOT_FOUND', `No approval with id "${id}". List pending approvals with \`tollgate approvals list\`.`);
        const names = await selectNames(app.db.pool, peopleOf([view]));
        io.out(opts.json ? toJson(view, 2) : formatRunApprovals([view], names).trimStart());
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
          io.out(opts.json ? toJson(outcome, 2) : outcome.message);
        });
      });
  }
}
