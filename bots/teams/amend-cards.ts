/**
 * Edit and retry, and Resolve by hand, as Teams cards (docs/operator-control.md), answered to the
 * run card's `Action.Execute` buttons in place of the clicked card:
 *
 * - `run.edit` → the workflow's form, prefilled with the run's input (inputs `param.<field>`),
 *   whose "Next" (`run.edit.preview`) is answered with what the edit will run again and undo and a
 *   "Retry with these" (`run.edit.confirm`, the values in its data); a bad value brings the form
 *   back with the error under its field, nothing recorded.
 * - `run.resolve` → the failed step's form: what to do, the output as JSON, the reason
 *   (`run.resolve.submit`).
 *
 * Pure functions of the chat core's forms; the bot (bot.ts) calls the core and answers.
 */
import { truncate, type EditForm, type ResolveForm } from '../../src/chat/index.ts';
import { CARD_SCHEMA, escapeMarkdown, fieldInput, PARAM_INPUT_PREFIX, VERBS, type AdaptiveCard, type CardElement, type ExecuteAction } from './cards.ts';

export const RESOLVE_INPUTS = { action: 'resolve.action', output: 'resolve.output', reason: 'resolve.reason' } as const;

const RESOLUTION_TITLES = {
  'by-hand': 'Resolve by hand (give its output)',
  skip: 'Skip and compensate (undo, end)',
  'give-up': 'Give up (end failed, undo nothing)',
};

function text(t: string, opts: Record<string, unknown> = {}): CardElement {
  return { type: 'TextBlock', text: truncate(t, 2000), wrap: true, ...opts };
}

function execute(title: string, verb: string, data: ExecuteAction['data'], associatedInputs: 'auto' | 'none', style?: 'positive'): ExecuteAction {
  return { type: 'Action.Execute', title, verb, data, associatedInputs, ...(style ? { style } : {}) };
}

function card(fallback: string, body: CardElement[], actions: ExecuteAction[] = []): AdaptiveCard {
  return {
    type: 'AdaptiveCard',
    $schema: CARD_SCHEMA,
    version: '1.5',
    fallbackText: truncate(fallback, 2000),
    body,
    ...(actions.length ? { actions } : {}),
    msteams: { width: 'Full' },
  };
}

function errorUnder(message: string | undefined): CardElement[] {
  return message ? [text(escapeMarkdown(truncate(message, 500)), { color: 'Attention', size: 'Small', spacing: 'None' })] : [];
}

/** The edit form: `given` overrides the run's input (the values sent back with `errors`). */
export function editFormCard(form: EditForm, given: Record<string, string> = form.given, errors: Record<string, string> = {}): AdaptiveCard {
  const names = new Set(form.fields.map((f) => f.name));
  const general = Object.entries(errors).filter(([k]) => !names.has(k));
  const body: CardElement[] = [
    text(`Edit and retry **${escapeMarkdown(form.workflow)}** v${form.version}`, { weight: 'Bolder', size: 'Medium' }),
    text(escapeMarkdown(form.intro), { isSubtle: true }),
    ...general.map(([k, m]) => text(`${k ? `**${escapeMarkdown(k)}**: ` : ''}${escapeMarkdown(m)}`, { color: 'Attention' })),
  ];
  for (const f of form.fields.slice(0, 40)) body.push(fieldInput(f, given[f.name]), ...errorUnder(errors[f.name]));
  return card(`Edit and retry ${form.runId}`, body, [execute('Next', VERBS.editPreview, { runId: form.runId }, 'auto', 'positive')]);
}

/** What the edit will do, with the button that carries it out (the values travel in its data). */
export function editConfirmCard(runId: string, summary: string, values: Record<string, string>): AdaptiveCard {
  const data: ExecuteAction['data'] = { runId };
  for (const [k, v] of Object.entries(values)) data[`${PARAM_INPUT_PREFIX}${k}`] = v;
  const body = [text(`Edit and retry ${escapeMarkdown(runId)}`, { weight: 'Bolder' }), text(escapeMarkdown(summary))];
  return card(`${runId}: ${summary}`, body, [execute('Retry with these', VERBS.editConfirm, data, 'none', 'positive')]);
}

export function resolveFormCard(form: ResolveForm, errors: Record<string, string> = {}): AdaptiveCard {
  const body: CardElement[] = [
    text(`Resolve **${escapeMarkdown(form.step)}**`, { weight: 'Bolder', size: 'Medium' }),
    text(escapeMarkdown(form.intro), { isSubtle: true }),
    {
      type: 'Input.ChoiceSet',
      id: RESOLVE_INPUTS.action,
      label: 'What to do',
      style: 'expanded',
      isRequired: true,
      choices: form.allowed.map((a) => ({ title: RESOLUTION_TITLES[a], value: a })),
      ...(form.allowed[0] ? { value: form.allowed[0] } : {}),
    },
  ];
  if (form.allowed.includes('by-hand')) {
    body.push({ type: 'Input.Text', id: RESOLVE_INPUTS.output, label: 'Output (JSON), for Resolve by hand, e.g. {"status": 200}', isMultiline: true });
    body.push(...errorUnder(errors.output));
  }
  body.push({ type: 'Input.Text', id: RESOLVE_INPUTS.reason, label: 'Why? (recorded with your name)', isMultiline: true, maxLength: 2000, isRequired: true });
  body.push(...errorUnder(errors.reason));
  return card(`Resolve ${form.step} of ${form.runId}`, body, [execute('Resolve', VERBS.resolveSubmit, { runId: form.runId }, 'auto', 'positive')]);
}

/** The `param.<field>` values of an action's data, as text. */
export function paramValues(data: Record<string, unknown>): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) {
    if (k.startsWith(PARAM_INPUT_PREFIX) && v !== undefined && v !== null)
      values[k.slice(PARAM_INPUT_PREFIX.length)] = typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  }
  return values;
}
