/**
 * The parameters modal: generated from the workflow's zod input schema (src/views/form.ts),
 * prefilled with what the person already gave, and read back on `view_submission`, where the same
 * schema validates it and its issues become inline field errors.
 *
 * Block ids are the field names (so `{response_action: 'errors', errors: {[field]: message}}`
 * lands under the right input); every input's action id is `value`.
 */
import type { KnownBlock, ModalView, PlainTextOption, InputBlock } from '@slack/types';
import { z } from 'zod';
import { describeForm, fieldErrors, type WorkflowDefinition } from '../../src/chat/index.ts';
import type { FormField } from '../../src/views/form.ts';
import { escapeMrkdwn } from './blocks.ts';
import { truncate } from '../../src/chat/index.ts';

export const PARAMS_CALLBACK_ID = 'run.params';
const ACTION = 'value';

/** What the modal remembers between opening and submission (private_metadata ≤ 3000 chars). */
export const paramsMetadataSchema = z.object({
  workflow: z.string(),
  version: z.number().int(),
  channel: z.string().nullable(),
  threadTs: z.string().nullable(),
});
export type ParamsMetadata = z.infer<typeof paramsMetadataSchema>;

function option(v: string): PlainTextOption {
  return { text: { type: 'plain_text', text: truncate(v, 75) }, value: truncate(v, 150) };
}

export function inputBlock(f: FormField, given: string | undefined): InputBlock {
  const initial = given ?? f.defaultValue;
  const label = { type: 'plain_text' as const, text: truncate(f.name, 2000) };
  const hint = f.description ? { type: 'plain_text' as const, text: truncate(f.description, 2000) } : undefined;
  const base = { type: 'input' as const, block_id: f.name, label, optional: f.optional, ...(hint ? { hint } : {}) };
  if (f.options) {
    const options = f.options.slice(0, 100).map(option);
    const initialOption = initial !== undefined ? options.find((o) => o.value === initial) : undefined;
    return {
      ...base,
      element: {
        type: 'static_select',
        action_id: ACTION,
        options,
        placeholder: { type: 'plain_text', text: 'Choose' },
        ...(initialOption ? { initial_option: initialOption } : {}),
      },
    };
  }
  return {
    ...base,
    element: {
      type: 'plain_text_input',
      action_id: ACTION,
      ...(initial !== undefined && initial !== '' ? { initial_value: truncate(initial, 3000) } : {}),
    },
  };
}

export function paramsModal(
  def: WorkflowDefinition,
  given: Record<string, string>,
  error: z.ZodError | undefined,
  meta: Omit<ParamsMetadata, 'workflow' | 'version'>,
): ModalView {
  const fields = describeForm(def.input);
  const blocks: KnownBlock[] = [];
  let intro = `*${escapeMrkdwn(def.name)}* v${def.version}: ${escapeMrkdwn(def.description)}`;
  if (error) {
    const errs = fieldErrors(error);
    intro += `\n${Object.entries(errs)
      .map(([k, m]) => `• ${k ? `*${escapeMrkdwn(k)}*: ` : ''}${escapeMrkdwn(m)}`)
      .join('\n')}`;
  }
  blocks.push({ type: 'section', text: { type: 'mrkdwn', text: truncate(intro, 3000) } });
  for (const f of fields.slice(0, 99)) blocks.push(inputBlock(f, given[f.name]));
  const metadata: ParamsMetadata = { workflow: def.name, version: def.version, ...meta };
  return {
    type: 'modal',
    callback_id: PARAMS_CALLBACK_ID,
    title: { type: 'plain_text', text: truncate(`Run ${def.name}`, 24) },
    submit: { type: 'plain_text', text: 'Run' },
    close: { type: 'plain_text', text: 'Cancel' },
    private_metadata: JSON.stringify(metadata),
    blocks,
  };
}

type StateValues = Record<string, Record<string, { value?: string | null; selected_option?: { value: string } | null }>>;

/** Reads the submitted values as text, by field name. */
export function readSubmission(values: StateValues): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [blockId, actions] of Object.entries(values)) {
    const v = actions[ACTION];
    if (!v) continue;
    out[blockId] = v.selected_option?.value ?? v.value ?? undefined;
  }
  return out;
}

/** Issues as Slack field errors; an issue with no field goes under the first input. */
export function slackFieldErrors(def: WorkflowDefinition, errors: Record<string, string>): Record<string, string> {
  return slackFieldErrorsOf(describeForm(def.input), errors);
}

/** The same, for the form's fields as the core's reply lists them. */
export function slackFieldErrorsOf(fields: readonly Pick<FormField, 'name'>[], errors: Record<string, string>): Record<string, string> {
  const names = fields.map((f) => f.name);
  const out: Record<string, string> = {};
  for (const [k, m] of Object.entries(errors)) {
    const key = names.includes(k) ? k : names[0];
    if (key !== undefined) out[key] ??= truncate(m, 2000);
  }
  return out;
}
