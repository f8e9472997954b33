/**
 * A command from a slash command, a mention or a DM: a valid `run` is recorded by the grouped
 * write, free text goes to the model (when one is configured), the rest is answered here.
 */
import { listPendingApprovals } from '../../approvals/index.ts';
import { createDelegation, describeDelegation, describeEnd, listDelegations, revokeMyDelegations } from '../../approvals/delegation.ts';
import { TollgateError } from '../../common/errors.ts';
import type { Principal } from '../../common/principals.ts';
import type { Queryable } from '../../db/queryable.ts';
import { withTransaction } from '../../db/transaction.ts';
import { toApprovalView } from '../../views/approval-view.ts';
import { loadRunMessageView } from '../../views/load-run-view.ts';
import { listRunsRequestedBy } from '../../db/queries/run-views.ts';
import { remember } from '../directory.ts';
import { addReply, type Where } from '../outbox.ts';
import { claimDeliveryKey } from '../../db/queries/chat-outbox.ts';
import { notice, type ChatReply } from '../replies.ts';
import { ALREADY_RECORDED, RUN_FORM_HINT, startedSentence } from '../sentences.ts';
import { toRunSummary, toWorkflowSummary } from '../summaries.ts';
import type { Intake } from './context.ts';
import { checkRun } from './forms.ts';
import { operate } from './operate.ts';
import { recordStart } from './start.ts';
import type { ChatCommand, DeferredIntent, Intent, SubmitResult } from './types.ts';

export async function submitCommand(ix: Intake, intent: Extract<Intent, { kind: 'command' }>): Promise<SubmitResult> {
  const { command, actor, where, key } = intent;
  const valid = command.kind === 'run' ? checkRun(ix, command) : undefined;
  if (valid && 'def' in valid) {
    const run = await recordStart(ix, valid.def, valid.input, actor, where, key, intent.carryOut, intent.remember);
    if (!run) return { duplicate: true, reply: notice(ALREADY_RECORDED) };
    return { duplicate: false, runId: run.id, reply: notice(startedSentence(run, where)) };
  }
  if (command.kind === 'text' && intent.understand && where && ix.o.model?.configured) {
    // Recorded, acknowledged, and read by the model in the worker: the ack never waits for a model.
    const payload: DeferredIntent = { kind: 'understand', text: command.text, actor, where };
    const recorded = await ix.deferred.submit({ ...(key ? { key: { platform: actor.platform, ...key } } : {}), payload, remember: intent.remember });
    return { duplicate: !recorded };
  }
  // Only commands that change something need to be recognised when re-sent, unless the reply
  // itself goes through the outbox (a mention's reply must not be posted twice).
  const changes =
    command.kind === 'retry' || command.kind === 'cancel' || (command.kind === 'delegate' && command.action !== 'list') || intent.replyVia === 'outbox';
  return withTransaction(ix.o.pool, async (q) => {
    await remember(q, intent.remember);
    if (key && changes && !(await claimDeliveryKey(q, actor.platform, key.key, key.kind))) {
      return { duplicate: true, reply: notice(ALREADY_RECORDED) };
    }
    const r = await execute(ix, q, command, actor, where);
    if (intent.replyVia === 'outbox' && where) {
      await addReply(q, where, ix.platform(where.platform).render(r.reply));
    }
    return { duplicate: false, ...r };
  });
}

/** Carries out a parsed command inside the caller's transaction; returns what to tell the person. */
export async function execute(
  ix: Intake,
  q: Queryable,
  cmd: ChatCommand,
  actor: Principal,
  _where: Where | null,
): Promise<{ reply: ChatReply; runId?: string }> {
  const { registry } = ix.o;
  const workflows = () => registry.latest().map(toWorkflowSummary);
  switch (cmd.kind) {
    case 'invalid':
      return { reply: notice(cmd.message) };
    case 'help':
      return { reply: { kind: 'workflows', intro: 'Tollgate runs workflows durably and keeps this channel posted.', workflows: workflows() } };
    case 'workflows':
      return { reply: { kind: 'workflows', intro: null, workflows: workflows() } };
    case 'text':
      return {
        reply: notice(
          ix.o.model?.configured
            ? // A slash command (or a request with no place to answer in): its grammar never calls the model.
              `Commands take the command grammar only: write ${RUN_FORM_HINT} To ask in your own words, mention me or write to me directly.`
            : `I only understand commands for now (no model is configured for free text). To start something, write ${RUN_FORM_HINT}`,
        ),
      };
    case 'approvals':
      return { reply: { kind: 'approvals', approvals: (await listPendingApprovals(q, actor)).map(toApprovalView) } };
    case 'runs':
      return { reply: { kind: 'runs', title: 'Your recent runs', runs: (await listRunsRequestedBy(q, actor, 10)).map(toRunSummary) } };
    case 'status': {
      // The runtime decides who may see a run (its tenant, approvers, operators); anyone else is
      // answered as if it did not exist.
      const visible = await ix.o.runtime.readRun(cmd.runId, actor, q).then(
        () => true,
        (e: unknown) => {
          if (e instanceof TollgateError && e.code === 'TG_RUN_NOT_FOUND') return false;
          throw e;
        },
      );
      const view = visible ? await loadRunMessageView(q, cmd.runId) : undefined;
      return { reply: view ? { kind: 'run-status', run: view } : notice(`No run with id \`${cmd.runId}\`. \`runs\` lists yours.`) };
    }
    case 'retry':
    case 'cancel':
      return { reply: notice((await operate(ix, q, cmd.kind, cmd.runId, actor)).text) };
    case 'delegate':
      return { reply: notice(await delegate(q, cmd, actor)) };
    case 'run': {
      // A valid run command is recorded by #command's grouped write and never comes here.
      const checked = checkRun(ix, cmd);
      return { reply: 'reply' in checked ? checked.reply : notice('This run was not started; send the command again.') };
    }
  }
}

/**
 * `delegate …` from a chat: the verified actor delegates their own approvals (src/approvals/delegation.ts);
 * a refusal (to oneself, a date passed or too far) is the answer, and nothing is recorded.
 */
async function delegate(q: Queryable, cmd: Extract<ChatCommand, { kind: 'delegate' }>, actor: Principal): Promise<string> {
  if (cmd.action === 'list') {
    const list = await listDelegations(q, actor);
    if (list.length === 0) return 'You have no delegations. Write `delegate @someone until YYYY-MM-DD` to let someone approve in your place.';
    return `Delegations you gave or received:\n${list.map((d) => `• ${describeDelegation(d)}`).join('\n')}`;
  }
  if (cmd.action === 'off') {
    const ended = await revokeMyDelegations(q, actor);
    if (ended.length === 0) return 'You had no delegation to end; nothing changed.';
    return `Ended: ${ended.map(describeDelegation).join('; ')}. Approvals that open from now on go to you alone; those already open keep their delegate.`;
  }
  try {
    const d = await createDelegation(q, { delegator: actor, delegate: cmd.to, endsAt: new Date(cmd.endsAt), via: actor.platform });
    return (
      `Delegated: ${d.delegate} may decide in your place until ${describeEnd(d.endsAt)} (${d.id}). ` +
      'Approvals that open in that time go to them too, and you keep the right; each decision they make records it was on your behalf. `delegate off` ends it.'
    );
  } catch (e) {
    if (e instanceof TollgateError && e.code === 'TG_DELEGATION_INVALID') return e.message;
    throw e;
  }
}
