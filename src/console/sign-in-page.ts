/** `GET /console/sign-in`: a token field. Also the answer to any console request that needs a token it did not bring. */
import type { ConsoleViewer } from './auth.ts';
import { html } from './html.ts';
import { page } from './layout.ts';

export function signInPage(opts: { viewer: ConsoleViewer; problem?: string; needed?: boolean }): string {
  const body = html`
<h1>Sign in</h1>
${opts.needed ? html`<div class="alert" role="alert">This console needs a token: TOLLGATE_CONSOLE_TOKEN, or your personal console token.</div>` : ''}
${opts.problem ? html`<div class="alert" role="alert" data-testid="sign-in-problem">${opts.problem}</div>` : ''}
<form method="post" action="/console/sign-in" class="card">
  <p><label>Token <input type="password" name="token" autocomplete="current-password" size="48" required autofocus></label></p>
  <p class="muted">Your personal token signs you in as the principal that <code>console.users</code> in the project configuration lists with its sha256: you may then retry or cancel the runs you requested, or any run if you are an operator. TOLLGATE_CONSOLE_TOKEN lets you read only.</p>
  <button type="submit" class="primary">Sign in</button>
</form>`;
  return page({ title: 'Sign in', viewer: opts.viewer, section: 'sign-in', body });
}
