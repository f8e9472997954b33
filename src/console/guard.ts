/**
 * The checks in front of every console route: the Host check of a loopback bind, who is asking
 * (auth.ts: a session, a token, or nobody), and for every form that changes something, the
 * same-origin check and the CSRF token bound to the viewer's session or cookie. One place checks
 * them all, so a new POST route is covered by being mounted.
 */
import type { Handler } from '../common/http.ts';
import { CSRF_FIELD, sameOrigin, type ConsoleAuth } from './auth.ts';
import { formBody, sendHtml, sendText, type ConsoleHandler } from './routing.ts';
import { signInPage } from './sign-in-page.ts';

const NOT_FROM_HERE =
  'This form was not sent from a page of this console (another site, or a browser that sends no Origin), so it was refused and nothing was changed. Open the console and use its buttons.';
const NO_CSRF =
  'This form did not carry the token of your session (a form from another site, or a page from before you signed in or out), so it was refused and nothing was changed. Reload the page and try again.';

/** The server's handler for a console route: `handler` runs only once the checks pass. */
export function guarded(auth: ConsoleAuth, method: 'GET' | 'POST', handler: ConsoleHandler, opts: { open?: boolean } = {}): Handler {
  return async (req, res, params = {}) => {
    if (!auth.hostAllowed(req)) {
      return sendText(res, 403, 'This console answers only requests addressed to this machine (localhost, 127.0.0.1 or [::1]); open it by one of those names.');
    }
    const { viewer, csrfExempt, setCookie } = await auth.identify(req);
    if (setCookie) res.setHeader('set-cookie', setCookie);
    if (method === 'POST') {
      if (!sameOrigin(req)) return sendHtml(res, 403, signInPage({ viewer, problem: NOT_FROM_HERE, provider: auth.provider }));
      // Read once here; the route's own formBody(req) gets the same fields (routing.ts), without the
      // token: it is the guard's, and a route that takes every field (a workflow's input) never sees it.
      if (!csrfExempt) {
        const form = await formBody(req);
        if (!auth.csrfMatches(viewer, form.get(CSRF_FIELD))) return sendHtml(res, 403, signInPage({ viewer, problem: NO_CSRF, provider: auth.provider }));
        form.delete(CSRF_FIELD);
      }
    }
    if (!viewer.allowed && !opts.open) return sendHtml(res, 401, signInPage({ viewer, needed: true, provider: auth.provider }));
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    await handler({ req, res, params, url, viewer });
  };
}
