/**
 * What a console route is (a handler given the request, its URL and the signed-in viewer, mounted
 * behind the console's guard) and how it answers: HTML with the console's security headers, a
 * redirect after a form, plain text for the few answers that are not pages.
 */
import type http from 'node:http';
import { readBody } from '../common/http.ts';
import type { ConsoleViewer } from './auth.ts';

export interface ConsoleRequest {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  params: Readonly<Record<string, string>>;
  url: URL;
  viewer: ConsoleViewer;
}

export type ConsoleHandler = (c: ConsoleRequest) => Promise<void> | void;

/** Mounts a route behind the guard; `open` routes (signing in and out) answer a viewer who is not allowed in. */
export type ConsoleMount = (method: 'GET' | 'POST', path: string, handler: ConsoleHandler, o?: { open?: boolean }) => void;

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
};

export function sendHtml(res: http.ServerResponse, status: number, body: string, nonce?: string, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; script-src ${nonce ? `'nonce-${nonce}'` : "'none'"}; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    ...SECURITY_HEADERS,
    ...headers,
  });
  res.end(body);
}

export function redirect(res: http.ServerResponse, to: string, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(303, { location: to, ...SECURITY_HEADERS, ...headers }).end();
}

export function sendText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS }).end(`${text}\n`);
}

/** Bodies already read (the guard reads a form's to check its CSRF token): a body can be read from the socket once. */
const forms = new WeakMap<http.IncomingMessage, Promise<URLSearchParams>>();

/** A form's fields; read once per request, so the guard and the route may both ask. */
export function formBody(req: http.IncomingMessage): Promise<URLSearchParams> {
  let form = forms.get(req);
  if (!form) {
    form = readBody(req, 64_000).then((b) => new URLSearchParams(b.toString('utf8')));
    forms.set(req, form);
  }
  return form;
}
