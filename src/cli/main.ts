/**
 * The `tollgate` command. `start` (server + worker), `server` and `worker` run Tollgate; the
 * others act on the same database: with the embedded PostgreSQL they find the one `npm start` is
 * running (through TOLLGATE_DATA_DIR), or start it themselves for the length of the command.
 * Runs started here are executed by whichever worker is running.
 *
 * Each command group has a module of its own under src/cli/commands, registered from the table
 * below in the order `tollgate --help` lists them. Every command imports what it uses when it
 * runs (src/cli/context.ts says why).
 */
import { Command } from 'commander';
import { isTollgateError } from '../common/errors.ts';
import { cliContext, type CliContext, type Io } from './context.ts';
import { registerServeCommands } from './commands/serve.ts';
import { registerWorkflowCommands } from './commands/workflows.ts';
import { registerRunCommands } from './commands/runs.ts';
import { registerApprovalCommands } from './commands/approvals.ts';
import { registerAuditCommands } from './commands/audit.ts';
import { registerPolicyCommands } from './commands/policy.ts';
import { registerDelegateCommands } from './commands/delegate.ts';
import { registerConsoleCommands } from './commands/console.ts';

export type { Io } from './context.ts';

/** The command groups, in the order `tollgate --help` lists their commands. */
const COMMAND_GROUPS: readonly ((program: Command, ctx: CliContext) => void)[] = [
  registerServeCommands, // start, server, worker, migrate
  registerWorkflowCommands, // workflows
  registerRunCommands, // run, runs …
  registerApprovalCommands, // approvals …, approve, reject
  registerAuditCommands, // audit …
  registerPolicyCommands, // policy test, policy diff
  registerDelegateCommands, // delegate, delegate list, delegate revoke
  registerConsoleCommands, // console sessions …
];

export function buildCli(io: Io, env: NodeJS.ProcessEnv = process.env): Command {
  const program = new Command('tollgate')
    .description('Durable workflows behind Slack and Teams: runs, approvals, audit.')
    .exitOverride()
    // A group's own options are read before its subcommand only (`delegate <p> --json` and
    // `delegate list --json` are both meant); the program itself has no options of its own.
    .enablePositionalOptions()
    .configureOutput({ writeOut: io.out, writeErr: io.err });
  const ctx = cliContext(io, env);
  for (const register of COMMAND_GROUPS) register(program, ctx);
  return program;
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
    if (isTollgateError(e)) {
      io.err(`${e.message}\n`);
      return 1;
    }
    io.err(`${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

// Run when executed directly (tsx src/cli/main.ts …, node dist/src/cli/main.js …); bin/tollgate.js calls main().
if (process.argv[1] && /cli[\\/]main\.[jt]s$/.test(process.argv[1])) {
  // Fire-and-forget at the top level: main() turns every failure into an exit code (it never rejects).
  void main(process.argv).then((code) => process.exit(code));
}
