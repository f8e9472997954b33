/**
 * Free text and proposals: the model reads a request in the worker and answers with a question,
 * the form, or a proposal that only its asker's Confirm turns into a run.
 */
import { TollgateError } from '../../common/errors.ts';
import { samePrincipal, type Principal } from '../../common/principals.ts';
import type { Queryable } from '../../db/queryable.ts';
import { withRetriedTransaction, withTransaction } from '../../db/transaction.ts';
import { understandRequest, type Understanding } from '../understand.ts';
import { isModelCallError } from '../../model/errors.ts';
import { recordModelCall } from '../../model/record.ts';
import type { ModelCallRecord } from '../../model/types.ts';
import { printable } from '../../runtime/run-input.ts';
import type { WorkflowDefinition } from '../../runtime/workflow.ts';
import { describeForm, fieldErrors } from '../../views/form.ts';
import { orderedParams, type ProposalView } from '../../views/proposal-view.ts';
import { remember } from '../directory.ts';
import { writeRunStarts } from '../intake-writes.ts';
import { addReply, replaceReply, type Where } from '../outbox.ts';
import { claimDeliveryKey } from '../../db/queries/chat-outbox.ts';
import type { ChatView } from '../platform.ts';
import { getProposal, type ProposalRow } from '../proposals.ts';
import { insertProposal, markProposalConfirmed, setProposalMessage } from '../../db/queries/proposals.ts';
import { notice, type ChatReply } from '../replies.ts';
import { ALREADY_RECORDED, PROPOSAL_UNKNOWN, RUN_FORM_HINT } from '../sentences.ts';
import type { Intake } from './context.ts';
import { checkInput, invalidParams, originOf } from './forms.ts';
import type { DeferredIntent, Intent, SubmitResult } from './types.ts';

/**
 * A free-text request, carried out by the worker: the model reads it (src/chat/understand.ts),
 * and the person is answered in the thread, in one transaction with the call's record: a
 * question, the form with what is missing, or a proposal with Confirm and Edit. Nothing starts
 * here. A model that fails or times out is answered too, never thrown: retrying the job would
 * only make the person wait longer for the same answer.
 */
export async function understand(ix: Intake, intent: Extract<DeferredIntent, { kind: 'understand' }>): Promise<void> {
  const { text, actor, where } = intent;
  const model = ix.o.model;
  let understood: Understanding | undefined;
  let failed: { message: string; record: ModelCallRecord | null } | undefined;
  if (!model?.configured) {
    failed = { message: 'No model is configured to read free text here.', record: null };
  } else {
    try {
      understood = await understandRequest(model, ix.o.registry.latest(), text, { log: ix.o.log });
    } catch (e) {
      const record = modelCallRecordOf(e);
      if (record)
        ix.o.log.warn({ code: (e as TollgateError).code, err: (e as Error).message }, 'the model could not read a free-text request; the person is told');
      else ix.o.log.error({ err: e }, 'reading a free-text request failed unexpectedly; the person is told');
      failed = { message: record ? (e as Error).message : 'Something went wrong while reading your request.', record };
    }
  }
  await withRetriedTransaction(ix.o.pool, async (q) => {
    const platform = ix.platform(where.platform);
    if (failed || !understood) {
      const why = failed?.message ?? 'Your request could not be read.';
      await addReply(q, where, platform.render(notice(`${why} Nothing was started. You can write it as a command instead: ${RUN_FORM_HINT}`)));
      if (failed?.record) await recordModelCall(q, { runId: null, stepIdx: null, actor, context: { intent: 'failed' } }, failed.record);
      return;
    }
    const u = understood;
    if (u.kind === 'ask') {
      await addReply(q, where, platform.render(notice(`${u.question}\nNothing was started. You can also write it as a command: ${RUN_FORM_HINT}`)));
      await recordModelCall(q, { runId: null, stepIdx: null, actor, context: { intent: 'ask' } }, u.record);
      return;
    }
    const def = ix.workflow(u.workflow, u.version);
    if (!def) throw new TollgateError('TG_WORKFLOW_UNKNOWN', `workflow ${u.workflow} v${u.version} was understood but is not registered`); // understandRequest only names registered ones
    if (u.kind === 'missing') {
      await addReply(q, where, platform.render(missingReply(def, u)));
      await recordModelCall(q, { runId: null, stepIdx: null, actor, context: { intent: 'missing', workflow: def.name, missing: u.missing } }, u.record);
      return;
    }
    const proposalId = await insertProposal(q, { workflow: def.name, version: def.version, input: u.input, params: u.given, asker: actor, place: where });
    const view = proposalViewOf(def, { id: proposalId, params: u.given, asker: actor, runId: null });
    const messageId = await addReply(q, where, platform.render({ kind: 'proposal', proposal: view }));
    await setProposalMessage(q, proposalId, messageId);
    await recordModelCall(q, { runId: null, stepIdx: null, actor, context: { intent: 'proposal', proposalId } }, u.record);
    ix.o.log.info({ proposalId, workflow: def.name, version: def.version }, 'a free-text request was understood; waiting for Confirm');
  });
}

/** What a free-text request still needs: the workflow's form, prefilled with what was given, the missing fields named. */
function missingReply(def: WorkflowDefinition, u: Extract<Understanding, { kind: 'missing' }>): ChatReply {
  const fields = describeForm(def.input);
  const errors: Record<string, string> = {};
  for (const name of u.missing) {
    const description = fields.find((f) => f.name === name)?.description;
    errors[name] = description ? `not given (${description})` : 'not given';
  }
  Object.assign(errors, u.invalid);
  const needed = [...u.missing, ...Object.keys(u.invalid).filter((k) => k !== '' && !u.missing.includes(k))];
  const list = needed.map((n) => `*${printable(n)}*`).join(', ');
  return {
    ...invalidParams(def, errors, u.given),
    intro: `To start *${def.name}* I still need ${list || 'a few more details'}. Nothing was started: fill in the form, or ask again with everything it needs.`,
  };
}

export function proposalViewOf(def: WorkflowDefinition, p: Pick<ProposalRow, 'id' | 'params' | 'asker' | 'runId'>): ProposalView {
  return {
    id: p.id,
    workflow: def.name,
    version: def.version,
    description: def.description,
    params: orderedParams(describeForm(def.input), p.params).map(({ name, value }) => ({ name: printable(name), value: printable(value) })),
    asker: p.asker,
    runId: p.runId,
  };
}

/** The view of a stored proposal (Teams redraws it for the clicker), or undefined when unknown. */
export async function proposalView(ix: Intake, proposalId: string, q: Queryable = ix.o.pool): Promise<ChatView | undefined> {
  const p = await getProposal(q, proposalId);
  const def = p ? ix.workflow(p.workflow, p.version) : undefined;
  return p && def ? { kind: 'proposal', proposal: proposalViewOf(def, p) } : undefined;
}

/**
 * Edit: the workflow and the text values to prefill its form with, or undefined for an unknown
 * proposal. Anyone may open it: a submitted form starts a run as whoever submits it, like any form.
 */
export async function proposalForm(
  ix: Intake,
  proposalId: string,
): Promise<{ def: WorkflowDefinition; given: Record<string, string>; where: Where } | undefined> {
  const p = await getProposal(ix.o.pool, proposalId);
  const def = p ? (ix.workflow(p.workflow, p.version) ?? ix.workflow(p.workflow)) : undefined;
  return p && def ? { def, given: p.params, where: p.place } : undefined;
}

export async function submitConfirm(ix: Intake, intent: Extract<Intent, { kind: 'confirm' }>): Promise<SubmitResult> {
  if (intent.carryOut === 'after-ack' && intent.explainAt) {
    const payload: DeferredIntent = { kind: 'confirm', proposalId: intent.proposalId, actor: intent.actor, explainAt: intent.explainAt };
    const recorded = await ix.deferred.submit({ key: { platform: intent.actor.platform, ...intent.key }, payload, remember: intent.remember });
    return { duplicate: !recorded };
  }
  return withTransaction(ix.o.pool, async (q) => {
    await remember(q, intent.remember);
    if (!(await claimDeliveryKey(q, intent.actor.platform, intent.key.key, intent.key.kind))) return { duplicate: true, reply: notice(ALREADY_RECORDED) };
    const outcome = await confirm(ix, q, intent.proposalId, intent.actor);
    if (!outcome.ok) await ix.explain(intent.actor, intent.explainAt, outcome.text, q);
    return { duplicate: false, reply: notice(outcome.text), ...(outcome.runId ? { runId: outcome.runId } : {}) };
  });
}

/**
 * Confirm: the proposal is locked, so two clicks are carried out one after the other and the
 * second finds the run the first started. Only the person who asked may confirm; the parameters
 * are checked again with the workflow's schema, exactly as a form start is, and the run is
 * created with its live message where the request was made, in this transaction.
 */
export async function confirm(ix: Intake, q: Queryable, proposalId: string, actor: Principal): Promise<{ ok: boolean; text: string; runId?: string }> {
  const p = await getProposal(q, proposalId, { lock: true });
  if (!p) return { ok: false, text: PROPOSAL_UNKNOWN };
  if (!samePrincipal(p.asker, actor)) {
    return {
      ok: false,
      text: `Only the person who asked can confirm this. To start *${p.workflow}* yourself, press *Edit* and submit the form, or write \`run ${p.workflow} key=value …\`.`,
    };
  }
  if (p.runId) return { ok: false, text: `Already confirmed: it started as \`${p.runId}\`.`, runId: p.runId };
  const def = ix.workflow(p.workflow, p.version);
  if (!def) return { ok: false, text: `*${p.workflow}* v${p.version} is no longer registered, so nothing was started; ask again.` };
  const checked = checkInput(def, p.params);
  if (!checked.ok) {
    const errs = Object.entries(fieldErrors(checked.error)).map(([k, m]) => (k ? `${printable(k)}: ${m}` : m));
    return { ok: false, text: `*${def.name}* does not accept these parameters (${errs.join('; ')}), so nothing was started; press *Edit* to correct them.` };
  }
  const run = ix.o.runtime.prepareRun({ workflow: def.name, version: def.version, input: checked.input, requester: actor, origin: originOf(actor, p.place) });
  await writeRunStarts(q, [{ run, message: p.place }]);
  await markProposalConfirmed(q, p.id, run.id);
  if (p.messageId) {
    // The proposal's message is drawn again: confirmed, with its run, and no buttons.
    const view = proposalViewOf(def, { ...p, runId: run.id });
    await replaceReply(q, p.messageId, ix.platform(p.place.platform).render({ kind: 'proposal', proposal: view }));
  }
  ix.o.log.info({ proposalId: p.id, runId: run.id, workflow: run.workflow, version: run.version }, 'proposal confirmed; run queued');
  return { ok: true, text: `Started *${def.name}* v${def.version} as \`${run.id}\`.`, runId: run.id };
}

/** The record a failed model call carries (`ModelCallError`), or null for any other error. */
function modelCallRecordOf(e: unknown): ModelCallRecord | null {
  return isModelCallError(e) ? e.record : null;
}
