/**
 * `tollgate console sessions list|revoke <id>`: the web console's sign-in sessions (OpenID
 * Connect, src/console/sessions.ts). Listed by their public id (`ses_…`), never by the secret the
 * browser's cookie holds; a revoked session is deleted, and its browser is signed out at its next
 * request.
 */
import type { Command } from 'commander';
import { TollgateError } from '../../common/errors.ts';
import { toJson } from '../format.ts';
import { table } from '../table.ts';
import { withApp, type CliContext } from '../context.ts';

const time = (d: Date) => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

export function registerConsoleCommands(program: Command, { io, lazy }: CliContext): void {
  const sessions = program
    .command('console')
    .description('The web console.')
    .command('sessions')
    .description('Sessions of people signed in to the console through the identity provider.');
  sessions
    .command('list')
    .description('List the live sessions: id, principal, name, signed in, last seen, ends.')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const { listLiveConsoleSessions } = await import('../../db/queries/console-sessions.ts');
        const idleMs = config.console.sessionIdleMs;
        const rows = await listLiveConsoleSessions(app.db.pool, idleMs);
        // A session ends at its absolute expiry or once idle for the limit, whichever comes first.
        const ends = (r: (typeof rows)[number]) => new Date(Math.min(r.expires_at.getTime(), r.last_seen_at.getTime() + idleMs));
        if (opts.json) {
          io.out(
            toJson(
              rows.map((r) => ({
                id: r.id,
                principal: r.principal,
                name: r.name,
                issuer: r.issuer,
                createdAt: r.created_at,
                lastSeenAt: r.last_seen_at,
                endsAt: ends(r),
              })),
              2,
            ),
          );
          return;
        }
        if (rows.length === 0) {
          io.out('No live console sessions.');
          return;
        }
        const head = ['ID', 'PRINCIPAL', 'NAME', 'SIGNED IN', 'LAST SEEN', 'ENDS'];
        io.out(
          table(
            head,
            rows.map((r) => [r.id, r.principal, r.name ?? '—', time(r.created_at), time(r.last_seen_at), time(ends(r))]),
          ),
        );
      });
    });
  sessions
    .command('revoke')
    .description('End a session now: its browser is signed out at its next request.')
    .argument('<id>', 'the session id (ses_…), as `tollgate console sessions list` shows it')
    .action(async (id: string) => {
      const { config, log } = await lazy(true);
      await withApp(config, log, async (app) => {
        const { deleteConsoleSession } = await import('../../db/queries/console-sessions.ts');
        const gone = await deleteConsoleSession(app.db.pool, id);
        if (!gone) {
          throw new TollgateError(
            'TG_USAGE',
            `No console session "${id}": it has ended or was revoked already. \`tollgate console sessions list\` shows the live ones.`,
          );
        }
        io.out(`Revoked ${gone.id} (${gone.principal}${gone.name ? `, ${gone.name}` : ''}): that browser is signed out.`);
      });
    });
}
