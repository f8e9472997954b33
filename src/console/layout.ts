/** The frame of every console page: navigation, who is signed in, the inline style sheet. */
import { formatPrincipal } from '../common/principals.ts';
import { personLabel } from '../views/people.ts';
import type { ConsoleViewer } from './auth.ts';
import { CSS, csrfField, html, raw, type Html } from './html.ts';

export type Section = 'runs' | 'approvals' | 'my-approvals' | 'my-runs' | 'audit' | 'sign-in';

export function who(viewer: ConsoleViewer): Html {
  if (viewer.principal) {
    return html`<span data-testid="who">Signed in as <strong data-principal="${formatPrincipal(viewer.principal)}" title="${formatPrincipal(viewer.principal)}">${personLabel(viewer.principal)}</strong>${viewer.operator ? ' (operator)' : ''}</span>
      <form method="post" action="/console/sign-out">${csrfField(viewer)}<button type="submit">Sign out</button></form>`;
  }
  const reading = viewer.via === 'console-token' ? 'Console token, read-only' : 'Not signed in, read-only';
  return html`<span data-testid="who">${reading}</span> · <a href="/console/sign-in">Sign in</a>`;
}

export function page(opts: { title: string; viewer: ConsoleViewer; section: Section; body: Html; script?: { nonce: string; code: string } }): string {
  const link = (s: Section, href: string, label: string) => html`<a href="${href}"${opts.section === s ? raw(' aria-current="page"') : ''}>${label}</a>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title} · Tollgate</title>
<style>${raw(CSS)}</style>
</head>
<body>
<header>
  <a class="brand" href="/console">Tollgate</a>
  <nav>${link('runs', '/console', 'Runs')}${link('approvals', '/console/approvals', 'Pending approvals')}${
    opts.viewer.principal ? html`${link('my-approvals', '/console/my/approvals', 'My approvals')}${link('my-runs', '/console/my/runs', 'My runs')}` : ''
  }${link('audit', '/console/audit', 'Audit')}</nav>
  <div class="who">${opts.viewer.allowed ? who(opts.viewer) : ''}</div>
</header>
<main>
${opts.body}
</main>
${opts.script ? html`<script nonce="${opts.script.nonce}">${raw(opts.script.code)}</script>` : ''}
</body>
</html>
`.text;
}
