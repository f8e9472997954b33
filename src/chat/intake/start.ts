/**
 * Starting a run from chat (a `run` command, a form submission): its input checked, its id given
 * here, recorded in the next grouped write.
 */
import type { Principal } from '../../common/principals.ts';
import type { PreparedRun } from '../../runtime/runtime.ts';
import type { WorkflowDefinition } from '../../runtime/workflow.ts';
import { fieldErrors } from '../../views/form.ts';
import { remember, type TeamsSeen } from '../directory.ts';
import type { Where } from '../outbox.ts';
import { notice } from '../replies.ts';
import { ALREADY_RECORDED, startedSentence } from '../sentences.ts';
import type { Intake } from './context.ts';
import { checkInput, invalidParams, originOf, unknownWorkflow } from './forms.ts';
import type { CarryOut, DeferredIntent, DeliveryKey, Intent, SubmitResult } from './types.ts';

export async function submitStart(ix: Intake, intent: Extract<Intent, { kind: 'start' }>): Promise<SubmitResult> {
  const def = ix.workflow(intent.workflow, intent.version) ?? ix.workflow(intent.workflow);
  if (!def) {
    await remember(ix.o.pool, intent.remember);
    return { duplicate: false, reply: unknownWorkflow(ix, intent.workflow) };
  }
  const checked = checkInput(def, intent.values);
  if (!checked.ok) {
    await remember(ix.o.pool, intent.remember);
    // The form again, with each error under its field; nothing is recorded.
    const errors = fieldErrors(checked.error);
    const given = Object.fromEntries(Object.entries(intent.values).filter((e): e is [string, string] => e[1] !== undefined));
    return { duplicate: false, fieldErrors: errors, reply: invalidParams(def, errors, given) };
  }
  const run = await recordStart(ix, def, checked.input, intent.actor, intent.where, intent.key, intent.carryOut, intent.remember);
  return run ? { duplicate: false, runId: run.id, reply: notice(startedSentence(run, intent.where)) } : { duplicate: true, reply: notice(ALREADY_RECORDED) };
}

/**
 * Records a run started from chat, its input checked and its id given here, with its delivery
 * key, in the next grouped write. 'now': the run, its event, job and live message are written
 * then. 'after-ack': the request is, and the worker creates the run right after (`carryOut`).
 * Undefined when the key was recorded before (a platform's re-send: nothing written).
 */
export async function recordStart(
  ix: Intake,
  def: WorkflowDefinition,
  input: unknown,
  actor: Principal,
  where: Where | null,
  key: DeliveryKey | undefined,
  carryOut: CarryOut = 'now',
  note?: TeamsSeen,
): Promise<PreparedRun | undefined> {
  const run = ix.o.runtime.prepareRun({ workflow: def.name, version: def.version, input, requester: actor, origin: originOf(actor, where) });
  const keyOf = { ...(key ? { key: { platform: actor.platform, ...key } } : {}), remember: note };
  const recorded =
    carryOut === 'after-ack'
      ? await ix.deferred.submit({ ...keyOf, runId: run.id, payload: { kind: 'start', run, where } satisfies DeferredIntent })
      : await ix.starts.submit({ ...keyOf, run, message: where });
  if (!recorded) return undefined;
  ix.o.log.info({ runId: run.id, workflow: run.workflow, version: run.version }, carryOut === 'after-ack' ? 'run requested' : 'run queued');
  return run;
}
