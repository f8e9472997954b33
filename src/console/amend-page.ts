/**
 * The console's Edit and retry and Resolve by hand pages (docs/operator-control.md): the
 * workflow's form prefilled with the run's input, the page that says what an edit will run again
 * and undo before it is confirmed, and the failed step's resolution form. Plain HTML forms
 * (`<form method="post">`, the console's same-origin check), usable without JavaScript.
 */
import type { EditForm, ResolveForm } from '../chat/intake/amend.ts';
import type { FormField } from '../views/form.ts';
import type { ConsoleViewer } from './auth.ts';
import { csrfField, html, type Html } from './html.ts';
import { page } from './layout.ts';
import { runPath } from './run-page.ts';

const RESOLUTION_LABELS = {
  'by-hand': 'Resolve by hand: the step is done, with the output below',
  skip: 'Skip and compensate: undo what was done and end the run',
  'give-up': 'Give up: end it failed, undo nothing, a person finishes it',
};

function errorOf(errors: Record<string, string>, name: string): Html {
  return errors[name] ? html`<div class="error" data-testid="field-error" data-field="${name}">${errors[name]}</div>` : html``;
}

function fieldInput(f: FormField, value: string | undefined): Html {
  const v = value ?? f.defaultValue ?? '';
  if (f.options) {
    return html`<select name="${f.name}" id="f-${f.name}">${f.optional ? html`<option value=""></option>` : ''}${f.options.map(
      (o) => html`<option value="${o}"${o === v ? html` selected` : ''}>${o}</option>`,
    )}</select>`;
  }
  return html`<input name="${f.name}" id="f-${f.name}" value="${v}"${f.optional ? '' : html` required`}>`;
}

/** The edit form; `given` are the values shown (the run's input, or what was sent back with errors). */
export function editPage(opts: { viewer: ConsoleViewer; form: EditForm; given: Record<string, string>; errors?: Record<string, string> }): string {
  const { form } = opts;
  const errors = opts.errors ?? {};
  const names = new Set(form.fields.map((f) => f.name));
  const general = Object.entries(errors).filter(([k]) => !names.has(k));
  const body = html`
<h1>Edit and retry <code>${form.runId}</code> · ${form.workflow} <span class="muted">v${form.version}</span></h1>
<p>${form.intro}</p>
${general.length ? html`<div class="alert" role="alert">${general.map(([k, m]) => html`<div>${k ? `${k}: ` : ''}${m}</div>`)}</div>` : ''}
<form method="post" action="${runPath(form.runId)}/edit" data-testid="edit-form">${csrfField(opts.viewer)}
${form.fields.map(
  (f) =>
    html`<p><label for="f-${f.name}"><strong>${f.name}</strong>${f.description ? html` <span class="muted">${f.description}</span>` : ''}</label><br>${fieldInput(f, opts.given[f.name])}${errorOf(errors, f.name)}</p>`,
)}
<button type="submit" class="primary">Next</button> <a href="${runPath(form.runId)}">Back to the run</a>
</form>`;
  return page({ title: `Edit and retry ${form.runId}`, viewer: opts.viewer, section: 'runs', body });
}

/** What the edit will do, and the button that carries it out (the values travel as hidden fields). */
export function editConfirmPage(opts: { viewer: ConsoleViewer; runId: string; summary: string; values: Record<string, string>; key: string }): string {
  const body = html`
<h1>Edit and retry <code>${opts.runId}</code></h1>
<div class="notice" role="status" data-testid="edit-plan">${opts.summary}</div>
<form method="post" action="${runPath(opts.runId)}/edit">${csrfField(opts.viewer)}
${Object.entries(opts.values).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}
<input type="hidden" name="_confirm" value="1"><input type="hidden" name="_key" value="${opts.key}">
<button type="submit" class="primary">Retry with these</button> <a href="${runPath(opts.runId)}">Back to the run</a>
</form>`;
  return page({ title: `Edit and retry ${opts.runId}`, viewer: opts.viewer, section: 'runs', body });
}

export function resolvePage(opts: {
  viewer: ConsoleViewer;
  form: ResolveForm;
  key: string;
  errors?: Record<string, string>;
  sent?: Record<string, string>;
}): string {
  const { form } = opts;
  const errors = opts.errors ?? {};
  const sent = opts.sent ?? {};
  const chosen = sent.action ?? form.allowed[0];
  const body = html`
<h1>Resolve <code>${form.step}</code> · <code>${form.runId}</code></h1>
<p>${form.intro}</p>
${errors[''] ? html`<div class="alert" role="alert">${errors['']}</div>` : ''}
<form method="post" action="${runPath(form.runId)}/resolve" data-testid="resolve-form">${csrfField(opts.viewer)}
${form.allowed.map((a) => html`<p><label><input type="radio" name="action" value="${a}"${a === chosen ? html` checked` : ''}> ${RESOLUTION_LABELS[a]}</label></p>`)}
${form.allowed.includes('by-hand') ? html`<p><label for="f-output"><strong>Output</strong> <span class="muted">(JSON, for Resolve by hand, e.g. {"status": 200})</span></label><br><textarea name="output" id="f-output" rows="4" cols="60">${sent.output ?? ''}</textarea>${errorOf(errors, 'output')}</p>` : ''}
<p><label for="f-reason"><strong>Why?</strong> <span class="muted">(recorded with your name)</span></label><br><textarea name="reason" id="f-reason" rows="3" cols="60">${sent.reason ?? ''}</textarea>${errorOf(errors, 'reason')}</p>
<input type="hidden" name="_key" value="${opts.key}">
<button type="submit" class="primary">Resolve</button> <a href="${runPath(form.runId)}">Back to the run</a>
</form>`;
  return page({ title: `Resolve ${form.runId}`, viewer: opts.viewer, section: 'runs', body });
}
