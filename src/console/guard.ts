/**
 * The checks in front of every console route: the Host check of a loopback bind, the token
 * (auth.ts), and for forms that change something, the same-origin check.
 */
import type { Handler } from '../common/http.ts';
import { sameOrigin, type ConsoleAuth } from './auth.ts';
import { sendHtml, sendText, type ConsoleHandler } from './routing.ts';
import { signInPage } from './sign-in-page.ts';

/** The server's handler for a console route: `handler` runs only once the checks pass. */
export function guarded(auth: ConsoleAuth, method: 'GET' | 'POST', handler: ConsoleHandler, opts: { open?: boolean } = {}): Handler {
  return async (req, res, params = {}) => {
    if (!auth.hostAllowed(req)) {
      return sendText(res, 403, 'This console answers only requests addressed to this machine (localhost, 127.0.0.1 or [::1]); open it by one of those names.');
    }
    const viewer = auth.identify(req);
    if (method === 'POST' && !sameOrigin(req)) {
      return sendHtml(
        res,
        403,
        signInPage({
          viewer,
          problem:
            'This form was not sent from a page of this console (another site, or a browser that sends no Origin), so it was refused and nothing was changed. Open the console and use its buttons.',
        }),
      );
    }
    if (!viewer.allowed && !opts.open) return sendHtml(res, 401, signInPage({ viewer, needed: true }));
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    await handler({ req, res, params, url, viewer });
  };
}
