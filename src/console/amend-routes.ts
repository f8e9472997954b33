/**
 * The console's Edit and retry and Resolve by hand (docs/operator-control.md), for the signed-in
 * person (`viewer.principal`): GET shows the form, POST sends it. Everything goes through the chat
 * layer like a click in Slack or Teams (`ChatCore.editForm`, `previewEdit`, `resolveForm`,
 * `submit({ kind: 'amend', via: 'console' })`), and the runtime decides who may: the requester or an
 * operator for an edit, operators for a resolution. Without a signed-in person the console is
 * read-only and these answer 403.
 */
import { randomUUID } from 'node:crypto';
import type { ChatCore } from '../chat/intake.ts';
import type { Intent } from '../chat/intake/types.ts';
import { editConfirmPage, editPage, resolvePage } from './amend-page.ts';
import { formBody, redirect, sendHtml, type ConsoleMount, type ConsoleRequest } from './routing.ts';
import { runPath } from './run-page.ts';

export interface AmendRoutes {
  chat: ChatCore;
  mount: ConsoleMount;
  /** The run page with a refusal on top (run-routes.ts). */
  refuse: (c: ConsoleRequest, runId: string, status: number, alert: string) => Promise<void>;
}

/** HTTP status for a refusal sentence from the runtime. */
function statusOf(text: string): number {
  return /^Only /.test(text) ? 403 : /^No run with id/.test(text) ? 404 : 409;
}

const READ_ONLY = 'Sign in to edit or resolve a run: without a signed-in person the console is read-only. Nothing was changed.';

export function mountAmendRoutes({ chat, mount, refuse }: AmendRoutes): void {
  mount('GET', '/console/runs/:id/edit', async (c) => {
    const runId = c.params.id as string;
    if (!c.viewer.principal) return refuse(c, runId, 403, READ_ONLY);
    const form = await chat.editForm(runId, c.viewer.principal);
    if (!form.ok) return refuse(c, runId, statusOf(form.text), form.text);
    sendHtml(c.res, 200, editPage({ viewer: c.viewer, form: form.form, given: form.form.given }));
  });

  mount('POST', '/console/runs/:id/edit', async (c) => {
    const runId = c.params.id as string;
    if (!c.viewer.principal) return refuse(c, runId, 403, READ_ONLY);
    const actor = c.viewer.principal;
    const body = await formBody(c.req);
    const values: Record<string, string> = {};
    for (const [k, v] of body) if (!k.startsWith('_')) values[k] = v;
    if (body.get('_confirm') === '1') {
      const key = { key: `console:${body.get('_key') ?? randomUUID()}`, kind: 'console_edit' };
      const r = await chat.submit({ kind: 'amend', runId, change: { action: 'edit', values }, actor, key, via: 'console' });
      if (r.refused) return refuse(c, runId, r.fieldErrors ? 400 : statusOf(r.refused), r.refused);
      return redirect(c.res, `${runPath(runId)}?done=edit`);
    }
    const preview = await chat.previewEdit(runId, actor, values);
    if (preview.ok)
      return sendHtml(c.res, 200, editConfirmPage({ viewer: c.viewer, runId, summary: preview.summary, values: preview.values, key: randomUUID() }));
    if (!preview.fieldErrors) return refuse(c, runId, statusOf(preview.text), preview.text);
    const form = await chat.editForm(runId, actor);
    if (!form.ok) return refuse(c, runId, statusOf(form.text), form.text);
    sendHtml(c.res, 400, editPage({ viewer: c.viewer, form: form.form, given: { ...form.form.given, ...values }, errors: preview.fieldErrors }));
  });

  mount('GET', '/console/runs/:id/resolve', async (c) => {
    const runId = c.params.id as string;
    if (!c.viewer.principal) return refuse(c, runId, 403, READ_ONLY);
    const form = await chat.resolveForm(runId, c.viewer.principal);
    if (!form.ok) return refuse(c, runId, statusOf(form.text), form.text);
    sendHtml(c.res, 200, resolvePage({ viewer: c.viewer, form: form.form, key: randomUUID() }));
  });

  mount('POST', '/console/runs/:id/resolve', async (c) => {
    const runId = c.params.id as string;
    if (!c.viewer.principal) return refuse(c, runId, 403, READ_ONLY);
    const actor = c.viewer.principal;
    const body = await formBody(c.req);
    const sent = { action: body.get('action') ?? '', output: body.get('output') ?? '', reason: body.get('reason') ?? '' };
    const change: Extract<Intent, { kind: 'amend' }>['change'] =
      sent.action === 'skip' || sent.action === 'give-up'
        ? { action: sent.action, reason: sent.reason }
        : { action: 'by-hand', output: sent.output, reason: sent.reason };
    const key = { key: `console:${body.get('_key') ?? randomUUID()}`, kind: 'console_resolve' };
    const r = await chat.submit({ kind: 'amend', runId, change, actor, key, via: 'console' });
    if (r.fieldErrors) {
      const form = await chat.resolveForm(runId, actor);
      if (form.ok) return sendHtml(c.res, 400, resolvePage({ viewer: c.viewer, form: form.form, key: randomUUID(), errors: r.fieldErrors, sent }));
    }
    if (r.refused) return refuse(c, runId, statusOf(r.refused), r.refused);
    redirect(c.res, `${runPath(runId)}?done=resolve`);
  });
}
