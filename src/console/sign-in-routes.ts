/** Signing in to the console with a token (a session cookie) and out again. */
import { clearedSessionCookie, sessionCookie, type ConsoleAuth } from './auth.ts';
import { formBody, redirect, sendHtml, type ConsoleMount } from './routing.ts';
import { signInPage } from './sign-in-page.ts';

export function mountSignInRoutes(mount: ConsoleMount, auth: ConsoleAuth): void {
  mount('GET', '/console/sign-in', (c) => sendHtml(c.res, 200, signInPage({ viewer: c.viewer })), { open: true });
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
            problem: 'That token is neither TOLLGATE_CONSOLE_TOKEN nor a personal token listed under console.users; check it and try again.',
          }),
        );
      }
      redirect(c.res, '/console', { 'set-cookie': sessionCookie(token) });
    },
    { open: true },
  );
  mount('POST', '/console/sign-out', (c) => redirect(c.res, '/console', { 'set-cookie': clearedSessionCookie() }), { open: true });
}
