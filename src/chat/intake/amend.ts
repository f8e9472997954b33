/**
 * Edit and retry, and Resolve by hand, from chat and the console (docs/operator-control.md): the
 * forms they open (prefilled with the run's input; the failed step and what its workflow allows),
 * the preview that says what an edit will run again and undo before it is confirmed, and the
 * `amend` intent that carries the change out. Who may, and whether the run can, is the runtime's
 * decision (src/runtime/runtime.ts `planEdit`, `retryWithEdits`, `resolvableStep`, `resolve`);
 * a refusal changes nothing and comes back as a sentence. Invalid values come back as field
 * errors, with nothing recorded (not even the delivery key, so the same form can be sent again).
 */
import { TollgateError } from '../../common/errors.ts';
import type { Principal } from '../../common/principals.ts';
import { withTransaction } from '../../db/transaction.ts';
import { claimDeliveryKey } from '../../db/queries/chat-outbox.ts';
import type { Resolution } from '../../runtime/amend.ts';
import { describeForm, type FormField } from '../../views/form.ts';
import { remember } from '../directory.ts';
import { notice } from '../replies.ts';
import { ALREADY_RECORDED } from '../sentences.ts';
import type { Intake } from './context.ts';
import type { Intent, SubmitResult } from './types.ts';

/** The Edit and retry form: the workflow's fields, prefilled with the run's input as text. */
export interface EditForm {
  runId: string;
  workflow: string;
  version: number;
  fields: FormField[];
  given: Record<string, string>;
  /** What the form says on top: the step the run failed at, and that nothing is changed before confirming. */
  intro: string;
}

/** The Resolve by hand form: the failed step and the resolutions its workflow allows. */
export interface ResolveForm {
  runId: string;
  workflow: string;
  step: string;
  allowed: Resolution['action'][];
  intro: string;
}

export type Refusable<T> = ({ ok: true } & T) | { ok: false; text: string; fieldErrors?: Record<string, string> };

/** A refusal from the runtime as a sentence for the person (its field errors kept); other errors rethrown. */
function refusal(e: unknown, runId: string): { ok: false; text: string; fieldErrors?: Record<string, string> } {
  if (e instanceof TollgateError && e.code === 'TG_RUN_NOT_FOUND') return { ok: false, text: `No run with id \`${runId}\`.` };
  if (e instanceof TollgateError) {
    const fieldErrors = e.details.fieldErrors as Record<string, string> | undefined;
    return { ok: false, text: e.message, ...(fieldErrors ? { fieldErrors } : {}) };
  }
  throw e;
}

/** A run input as the text a form shows (numbers and booleans written out, other values as JSON). */
export function inputAsText(input: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(input && typeof input === 'object' ? input : {})) {
    if (v === undefined || v === null) continue;
    out[k] = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  }
  return out;
}

export async function editForm(ix: Intake, runId: string, actor: Principal): Promise<Refusable<{ form: EditForm }>> {
  try {
    const plan = await ix.o.runtime.planEdit(runId, actor, {});
    const { run } = await ix.o.runtime.getRun(runId);
    const def = ix.o.registry.get(run.workflow, run.workflow_version);
    const intro = `Edit the input of \`${runId}\` and retry it${plan.resumeAt ? ` from "${plan.resumeAt}"` : ''}. Nothing changes until you confirm what it will do.`;
    return {
      ok: true,
      form: { runId, workflow: def.name, version: def.version, fields: describeForm(def.input), given: inputAsText(run.input), intro },
    };
  } catch (e) {
    return refusal(e, runId);
  }
}

/** What an edit with `values` will do (the sentence shown before confirming), or its field errors; records nothing. */
export async function previewEdit(
  ix: Intake,
  runId: string,
  actor: Principal,
  values: Record<string, string | undefined>,
): Promise<Refusable<{ summary: string; values: Record<string, string> }>> {
  try {
    const plan = await ix.o.runtime.planEdit(runId, actor, values);
    const kept = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v ?? '']));
    return { ok: true, summary: plan.summary, values: kept };
  } catch (e) {
    return refusal(e, runId);
  }
}

export async function resolveForm(ix: Intake, runId: string, actor: Principal): Promise<Refusable<{ form: ResolveForm }>> {
  try {
    const { run, held } = await ix.o.runtime.resolvableStep(runId, actor);
    const allowed: Resolution['action'][] = [
      ...(held.byHand ? ['by-hand' as const] : []),
      ...(held.skip ? ['skip' as const] : []),
      ...(held.giveUp ? ['give-up' as const] : []),
    ];
    const intro = `Step "${held.name}" of \`${runId}\` (${run.workflow}) failed. Say why; it is recorded with your name.`;
    return { ok: true, form: { runId, workflow: run.workflow, step: held.name, allowed, intro } };
  } catch (e) {
    return refusal(e, runId);
  }
}

/** The change an `amend` intent carries, as the runtime takes it (by-hand output parsed from its JSON text). */
function resolutionOf(change: Extract<Intent, { kind: 'amend' }>['change']): Resolution | { fieldErrors: Record<string, string> } {
  if (change.action === 'skip' || change.action === 'give-up') return { action: change.action, reason: change.reason };
  if (change.action !== 'by-hand') throw new TollgateError('TG_INTERNAL', 'not a resolution');
  const text = change.output.trim();
  if (text === '') return { action: 'by-hand', output: null, reason: change.reason };
  try {
    return { action: 'by-hand', output: JSON.parse(text) as unknown, reason: change.reason };
  } catch (e) {
    return { fieldErrors: { output: `Give the output as JSON, such as {"status": 200}: ${(e as Error).message}.` } };
  }
}

/**
 * Carries out an edit or a resolution now, in one transaction with its delivery key. Field errors
 * and refusals roll everything back (nothing recorded) and come back to the form or the person.
 */
export async function submitAmend(ix: Intake, intent: Extract<Intent, { kind: 'amend' }>): Promise<SubmitResult> {
  const { runId, actor, change } = intent;
  const resolution = change.action === 'edit' ? undefined : resolutionOf(change);
  if (resolution && 'fieldErrors' in resolution) return { duplicate: false, runId, fieldErrors: resolution.fieldErrors, refused: 'Invalid output.' };
  const opts = { via: intent.via ?? actor.platform };
  try {
    return await withTransaction(ix.o.pool, async (q) => {
      await remember(q, intent.remember);
      if (!(await claimDeliveryKey(q, actor.platform, intent.key.key, intent.key.kind))) return { duplicate: true, runId, reply: notice(ALREADY_RECORDED) };
      if (change.action === 'edit') {
        const { plan } = await ix.o.runtime.retryWithEdits(runId, actor, change.values, { ...opts, client: q });
        return { duplicate: false, runId, reply: notice(`Edited \`${runId}\` and queued it again. ${plan.summary}`) };
      }
      await ix.o.runtime.resolve(runId, actor, resolution as Resolution, { ...opts, client: q });
      return { duplicate: false, runId, reply: notice(RESOLVED[change.action](runId)) };
    });
  } catch (e) {
    const r = refusal(e, runId);
    return { duplicate: false, runId, refused: r.text, reply: notice(r.text), ...(r.fieldErrors ? { fieldErrors: r.fieldErrors } : {}) };
  }
}

const RESOLVED = {
  'by-hand': (runId: string) => `Marked the failed step of \`${runId}\` done by hand; the run continues from the next step.`,
  skip: (runId: string) => `Skipping: \`${runId}\` undoes its completed steps and ends compensated.`,
  'give-up': (runId: string) => `Gave up \`${runId}\`: it stays failed with nothing undone, for a person to finish.`,
};
