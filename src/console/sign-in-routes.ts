/**
 * Signing in to the console and out again: through OpenID Connect (oidc.ts; a server-side session,
 * sessions.ts) when an identity provider is configured, or with a personal token (a cookie).
 */
import { clearedSessionCookie, cookie, sessionCookie, type ConsoleAuth } from './auth.ts';
import type { OidcSignIn } from './oidc.ts';
import { formBody, redirect, sendHtml, type ConsoleMount } from './routing.ts';
import { SESSION_COOKIE_NAME, type ConsoleSessions } from './sessions.ts';
import { signInPage } from './sign-in-page.ts';

/** What the console tells the directory of a person who signed in: the name their identity provider gave (people by name). */
export type RememberName = (principal: string, name: string | null, source: string) => Promise<void>;

export function mountSignInRoutes(
  mount: ConsoleMount,
  auth: ConsoleAuth,
  oidc?: { signIn: OidcSignIn; sessions: ConsoleSessions },
  rememberName?: RememberName,
): void {
  const provider = oidc?.signIn.provider;
  mount('GET', '/console/sign-in', (c) => sendHtml(c.res, 200, signInPage({ viewer: c.viewer, provider })), { open: true });
  mount(
    'POST',
    '/console/sign-in',
    async (c) => {
      const token = (await formBody(c.req)).get('token')?.trim() ?? '';
      if (!token || !auth.recognise(token)) {
        return sendHtml(
          c.res,
          401,
          signInPage({
            viewer: c.viewer,
            provider,
            problem: 'That token is neither TOLLGATE_CONSOLE_TOKEN nor a personal token listed under console.users; check it and try again.',
          }),
        );
      }
      redirect(c.res, '/console', { 'set-cookie': sessionCookie(token) });
    },
    { open: true },
  );
  // Sign-out ends both kinds: the session's row is deleted, and both cookies are cleared.
  mount(
    'POST',
    '/console/sign-out',
    async (c) => {
      const secret = cookie(c.req, SESSION_COOKIE_NAME);
      if (secret && oidc) await oidc.sessions.signOut(secret);
      redirect(c.res, '/console', { 'set-cookie': [clearedSessionCookie(), ...(oidc ? [oidc.sessions.clearedCookie()] : [])] });
    },
    { open: true },
  );
  if (oidc) mountOidcRoutes(mount, oidc.signIn, oidc.sessions, rememberName);
}

function mountOidcRoutes(mount: ConsoleMount, signIn: OidcSignIn, sessions: ConsoleSessions, rememberName?: RememberName): void {
  const provider = signIn.provider;
  mount(
    'GET',
    '/console/sign-in/oidc',
    async (c) => {
      const started = await signIn.start();
      if ('problem' in started) return sendHtml(c.res, 502, signInPage({ viewer: c.viewer, provider, problem: started.problem }));
      c.res.writeHead(302, { location: started.location, 'set-cookie': started.cookie, 'cache-control': 'no-store' }).end();
    },
    { open: true },
  );
  mount(
    'GET',
    '/console/sign-in/oidc/callback',
    async (c) => {
      const outcome = await signIn.finish(c.url.searchParams, cookie(c.req, 'tollgate_oidc'));
      if (!outcome.ok) {
        const problem = outcome.detail ? `${outcome.problem} (${outcome.detail})` : outcome.problem;
        return sendHtml(c.res, outcome.status, signInPage({ viewer: c.viewer, provider, problem }), undefined, { 'set-cookie': signIn.clearedBrowserCookie() });
      }
      const { secret } = await sessions.create({ principal: outcome.principal, name: outcome.name, issuer: signIn.settings.issuer });
      // The OIDC profile's name goes into the directory, as Teams' `from.name` does; never used to authorise.
      await rememberName?.(outcome.principal, outcome.name, 'oidc');
      redirect(c.res, '/console', { 'set-cookie': [sessions.cookie(secret), signIn.clearedBrowserCookie()] });
    },
    { open: true },
  );
}
