/**
 * `GET /console/sign-in`: "Sign in with <provider>" when an identity provider is configured
 * (oidc.ts), and the personal-token form as the fallback. Also the answer to any console request
 * that needs a sign-in it did not bring, and to a refused sign-in (the reason on top).
 */
import type { ConsoleViewer } from './auth.ts';
import { csrfField, html } from './html.ts';
import { page } from './layout.ts';

export function signInPage(opts: { viewer: ConsoleViewer; problem?: string; needed?: boolean; provider?: string | undefined }): string {
  const { viewer, provider } = opts;
  const needed = provider
    ? `This console needs you to sign in: with ${provider}, your personal console token, or TOLLGATE_CONSOLE_TOKEN.`
    : 'This console needs a token: TOLLGATE_CONSOLE_TOKEN, or your personal console token.';
  const body = html`
<h1>Sign in</h1>
${viewer.sessionEnded ? html`<div class="notice" data-testid="session-ended">Your session has ended (signed out, expired or revoked); sign in again.</div>` : ''}
${opts.needed ? html`<div class="alert" role="alert">${needed}</div>` : ''}
${opts.problem ? html`<div class="alert" role="alert" data-testid="sign-in-problem">${opts.problem}</div>` : ''}
${
  provider
    ? html`<p class="card"><a class="button primary" href="/console/sign-in/oidc" data-testid="oidc-sign-in">Sign in with ${provider}</a>
  <span class="muted">You are then the person chat knows you by, with what you may do there.</span></p>
<p class="muted">Or, on a machine set up without it, with a personal token:</p>`
    : ''
}
<form method="post" action="/console/sign-in" class="card">${csrfField(viewer)}
  <p><label>Token <input type="password" name="token" autocomplete="current-password" size="48" required${provider ? '' : ' autofocus'}></label></p>
  <p class="muted">Your personal token signs you in as the principal that <code>console.users</code> in the project configuration lists with its sha256: you may then retry or cancel the runs you requested, or any run if you are an operator. TOLLGATE_CONSOLE_TOKEN lets you read only.</p>
  <button type="submit" class="primary">Sign in</button>
</form>`;
  return page({ title: 'Sign in', viewer, section: 'sign-in', body });
}
