/**
 * Edit and retry, and Resolve by hand, in Slack (docs/operator-control.md): the buttons' modals
 * and their submissions. Each listener only parses and renders; the chat core decides (who may,
 * what an edit runs again, field errors) and records (`submit({ kind: 'amend' })`).
 *
 * - "Edit and retry" opens the workflow's form prefilled with the run's input (`run.edit`); its
 *   submission is answered with what the edit will do (`run.edit.confirm`, the same modal updated),
 *   whose submission carries the edit out. A bad value comes back under its field, nothing recorded.
 * - "Resolve…" opens the failed step's form (`run.resolve`): what to do (by hand, skip, give up, as
 *   its workflow allows), the output as JSON, and the reason.
 */
import type { KnownBlock, ModalView } from '@slack/types';
import type { Middleware, SlackActionMiddlewareArgs, SlackViewMiddlewareArgs } from '@slack/bolt';
import { z } from 'zod';
import {
  ACTION_IDS,
  truncate,
  type ChatCore,
  type EditForm,
  type Intent,
  type Logger,
  type Principal,
  type ResolveForm,
  type Where,
} from '../../src/chat/index.ts';
import { escapeMrkdwn, LIMITS } from './blocks.ts';
import { principalFromInteraction } from './identity.ts';
import { inputBlock, readSubmission } from './modal.ts';

type ActionListener = Middleware<SlackActionMiddlewareArgs>;
type ViewListener = Middleware<SlackViewMiddlewareArgs>;

export const EDIT_CALLBACK_ID = 'run.edit';
export const EDIT_CONFIRM_CALLBACK_ID = 'run.edit.confirm';
export const RESOLVE_CALLBACK_ID = 'run.resolve';
const RESOLVE_BLOCKS = { action: 'resolve.action', output: 'resolve.output', reason: 'resolve.reason' } as const;
const ACTION = 'value';

const RESOLUTION_LABELS = {
  'by-hand': 'Resolve by hand (give its output)',
  skip: 'Skip and compensate (undo, end)',
  'give-up': 'Give up (end failed, undo nothing)',
};

const TOO_LONG =
  "These values are too long to carry through Slack's confirmation (3,000 characters); nothing was changed. Edit this run from the console or with `tollgate runs retry <id> --set key=value`.";

const editMetaSchema = z.object({ runId: z.string() });
const confirmMetaSchema = z.object({ runId: z.string(), values: z.record(z.string(), z.string()) });

function section(text: string): KnownBlock {
  return { type: 'section', text: { type: 'mrkdwn', text: truncate(text, LIMITS.sectionText) } };
}

function modal(callbackId: string | undefined, title: string, blocks: KnownBlock[], meta: unknown, submit?: string): ModalView {
  return {
    type: 'modal',
    ...(callbackId ? { callback_id: callbackId } : {}),
    title: { type: 'plain_text', text: truncate(title, 24) },
    ...(submit ? { submit: { type: 'plain_text', text: submit } } : {}),
    close: { type: 'plain_text', text: submit ? 'Cancel' : 'Close' },
    private_metadata: JSON.stringify(meta ?? {}),
    blocks,
  };
}

export function editModal(form: EditForm): ModalView {
  const blocks: KnownBlock[] = [section(`*${escapeMrkdwn(form.workflow)}* v${form.version}: ${escapeMrkdwn(form.intro)}`)];
  for (const f of form.fields.slice(0, 99)) blocks.push(inputBlock(f, form.given[f.name]));
  return modal(EDIT_CALLBACK_ID, 'Edit and retry', blocks, { runId: form.runId }, 'Next');
}

export function editConfirmModal(runId: string, summary: string, values: Record<string, string>): ModalView {
  return modal(EDIT_CONFIRM_CALLBACK_ID, 'Edit and retry', [section(`*\`${escapeMrkdwn(runId)}\`*: ${escapeMrkdwn(summary)}`)], { runId, values }, 'Retry');
}

export function noticeModal(text: string): ModalView {
  return modal(undefined, 'Tollgate', [section(escapeMrkdwn(text))], {});
}

export function resolveModal(form: ResolveForm): ModalView {
  const options = form.allowed.map((a) => ({ text: { type: 'plain_text' as const, text: RESOLUTION_LABELS[a] }, value: a }));
  const blocks: KnownBlock[] = [
    section(escapeMrkdwn(form.intro)),
    {
      type: 'input',
      block_id: RESOLVE_BLOCKS.action,
      label: { type: 'plain_text', text: 'What to do' },
      element: { type: 'static_select', action_id: ACTION, options, ...(options[0] ? { initial_option: options[0] } : {}) },
    },
  ];
  if (form.allowed.includes('by-hand')) {
    blocks.push({
      type: 'input',
      block_id: RESOLVE_BLOCKS.output,
      optional: true,
      label: { type: 'plain_text', text: 'Output (JSON), for Resolve by hand' },
      hint: { type: 'plain_text', text: 'What the rest of the run needs from this step, e.g. {"status": 200}' },
      element: { type: 'plain_text_input', action_id: ACTION, multiline: true },
    });
  }
  blocks.push({
    type: 'input',
    block_id: RESOLVE_BLOCKS.reason,
    label: { type: 'plain_text', text: 'Why? (recorded with your name)' },
    element: { type: 'plain_text_input', action_id: ACTION, multiline: true, max_length: 2000 },
  });
  return modal(RESOLVE_CALLBACK_ID, 'Resolve', blocks, { runId: form.runId }, 'Resolve');
}

function meta<T>(schema: z.ZodType<T>, s: string): T | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(s));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Field errors under the blocks that exist (`names`); one with no such block goes under the first. */
function errorsFor(names: string[], errors: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, m] of Object.entries(errors)) {
    const key = names.includes(k) ? k : names[0];
    if (key !== undefined) out[key] ??= truncate(m, 2000);
  }
  return out;
}

interface ClickBody {
  trigger_id: string;
}

/** The listeners, by action id and callback id, for the bot to register. */
export function amendListeners(o: { core: () => ChatCore; log: Logger; explainAt: (actor: Principal, body: never) => Where }): {
  actions: [string, ActionListener][];
  views: [string, ViewListener][];
} {
  const open =
    (kind: 'edit' | 'resolve'): ActionListener =>
    async ({ ack, body, action, client }) => {
      const b = body as unknown as ClickBody;
      const actor = principalFromInteraction(body);
      const runId = (action as { value?: string }).value ?? '';
      const core = o.core();
      const form = kind === 'edit' ? await core.editForm(runId, actor) : await core.resolveForm(runId, actor);
      if (!form.ok) {
        await core.explain(actor, o.explainAt(actor, body as never), form.text);
      } else {
        const view = 'form' in form && kind === 'edit' ? editModal(form.form as EditForm) : resolveModal(form.form as ResolveForm);
        await client.views.open({ trigger_id: b.trigger_id, view }).catch(async (e: unknown) => {
          o.log.warn({ err: (e as Error).message, runId }, 'views.open for an edit or resolution failed');
          await core.explain(
            actor,
            o.explainAt(actor, body as never),
            'The form could not be opened in Slack; try again, or use `tollgate runs retry --set` or `runs resolve`.',
          );
        });
      }
      await ack();
    };

  const editSubmitted: ViewListener = async ({ ack, body, view }) => {
    const actor = principalFromInteraction(body);
    const m = meta(editMetaSchema, view.private_metadata);
    const values = readSubmission(view.state.values);
    if (!m) return ack({ response_action: 'update', view: noticeModal('This form could not be read; open it again from the run.') });
    const preview = await o.core().previewEdit(m.runId, actor, values);
    if (preview.ok) {
      // The values travel in private_metadata, which Slack caps at 3000 characters.
      if (JSON.stringify({ runId: m.runId, values: preview.values }).length > 3000) {
        return ack({ response_action: 'update', view: noticeModal(TOO_LONG) });
      }
      return ack({ response_action: 'update', view: editConfirmModal(m.runId, preview.summary, preview.values) });
    }
    if (preview.fieldErrors) return ack({ response_action: 'errors', errors: errorsFor(Object.keys(view.state.values), preview.fieldErrors) });
    return ack({ response_action: 'update', view: noticeModal(preview.text) });
  };

  const editConfirmed: ViewListener = async ({ ack, body, view }) => {
    const actor = principalFromInteraction(body);
    const m = meta(confirmMetaSchema, view.private_metadata);
    if (!m) return ack({ response_action: 'update', view: noticeModal('This form could not be read; open it again from the run.') });
    const r = await o.core().submit({
      kind: 'amend',
      runId: m.runId,
      change: { action: 'edit', values: m.values },
      actor,
      key: { key: `view:${view.id}:confirm`, kind: 'view_submission' },
    });
    const text = r.reply?.kind === 'notice' ? r.reply.text : (r.refused ?? 'Done.');
    return ack({ response_action: 'update', view: noticeModal(text) });
  };

  const resolveSubmitted: ViewListener = async ({ ack, body, view }) => {
    const actor = principalFromInteraction(body);
    const m = meta(editMetaSchema, view.private_metadata);
    if (!m) return ack({ response_action: 'update', view: noticeModal('This form could not be read; open it again from the run.') });
    const v = readSubmission(view.state.values);
    const action = v[RESOLVE_BLOCKS.action];
    const reason = v[RESOLVE_BLOCKS.reason] ?? '';
    const change: Extract<Intent, { kind: 'amend' }>['change'] =
      action === 'skip' || action === 'give-up' ? { action: action, reason } : { action: 'by-hand' as const, output: v[RESOLVE_BLOCKS.output] ?? '', reason };
    const r = await o.core().submit({ kind: 'amend', runId: m.runId, change, actor, key: { key: `view:${view.id}`, kind: 'view_submission' } });
    if (r.fieldErrors) {
      const byBlock = Object.fromEntries(
        Object.entries(r.fieldErrors).map(([k, msg]) => [k === 'reason' ? RESOLVE_BLOCKS.reason : k === 'output' ? RESOLVE_BLOCKS.output : k, msg]),
      );
      return ack({ response_action: 'errors', errors: errorsFor(Object.keys(view.state.values), byBlock) });
    }
    const text = r.reply?.kind === 'notice' ? r.reply.text : (r.refused ?? 'Done.');
    return ack({ response_action: 'update', view: noticeModal(text) });
  };

  return {
    actions: [
      [ACTION_IDS.edit, open('edit')],
      [ACTION_IDS.resolve, open('resolve')],
    ],
    views: [
      [EDIT_CALLBACK_ID, editSubmitted],
      [EDIT_CONFIRM_CALLBACK_ID, editConfirmed],
      [RESOLVE_CALLBACK_ID, resolveSubmitted],
    ],
  };
}
