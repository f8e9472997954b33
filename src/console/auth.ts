/**
 * Who is looking at the console, and may they.
 *
 * - Access. Without `TOLLGATE_CONSOLE_TOKEN` the console is open to whoever reaches it, which the
 *   bind rule (bind.ts) limits to this machine; requests must then name a loopback Host too, so
 *   a web page elsewhere cannot read it through DNS rebinding. With the token set, every request
 *   needs it or a personal token.
 * - Identity. A person signs in with a personal token whose sha256 is listed under
 *   `console.users` in the project configuration (`"slack:T1:U1": "<sha256 hex>"`); they are then
 *   that principal, and their Retry and Cancel go to the runtime, which authorises them like a
 *   click in chat (the requester or an operator). The console token alone reads, never acts.
 * - A token comes as `Authorization: Bearer <token>`, or from the sign-in form as an HttpOnly,
 *   SameSite=Strict cookie scoped to /console.
 * - Forms that change something (sign-in, Retry, Cancel, Verify) must come from the console's own
 *   origin (`sameOrigin`): the Origin (or Referer) header must name the Host the request was sent to.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { parsePrincipal, type Principal } from '../common/principals.ts';
import { isLoopbackHost } from './bind.ts';

export const SESSION_COOKIE = 'tollgate_console';

export interface ConsoleViewer {
  /** May this request see the console at all. */
  allowed: boolean;
  /** How it was let in: no token needed (loopback, no TOLLGATE_CONSOLE_TOKEN), the console token, or a personal token. */
  via: 'open' | 'console-token' | 'user' | 'none';
  /** The signed-in person; null: read-only. */
  principal: Principal | null;
  /** The principal is in the project's `operators` (shown, never used to authorise: the runtime does). */
  operator: boolean;
}

export interface ConsoleAuthOptions {
  /** TOLLGATE_CONSOLE_TOKEN */
  token: string | undefined;
  /** `console.users`: principal → sha256 (hex) of their personal token. */
  users: Readonly<Record<string, string>>;
  operators: readonly string[];
  /** The server listens on a loopback address only. */
  loopbackBind: boolean;
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export class ConsoleAuth {
  readonly #tokenHash: Buffer | undefined;
  readonly #users: { hash: Buffer; principal: Principal }[];
  readonly #operators: ReadonlySet<string>;
  readonly #loopbackBind: boolean;

  constructor(opts: ConsoleAuthOptions) {
    this.#tokenHash = opts.token ? sha256(opts.token) : undefined;
    this.#users = Object.entries(opts.users).map(([who, hex]) => ({ hash: Buffer.from(hex, 'hex'), principal: parsePrincipal(who) }));
    this.#operators = new Set(opts.operators);
    this.#loopbackBind = opts.loopbackBind;
  }

  /** What a presented token is: the console token, a person's, or nothing we know. Compared in constant time. */
  recognise(token: string): { kind: 'console-token' } | { kind: 'user'; principal: Principal } | undefined {
    const h = sha256(token);
    let found: ReturnType<ConsoleAuth['recognise']>;
    if (this.#tokenHash && timingSafeEqual(h, this.#tokenHash)) found = { kind: 'console-token' };
    for (const u of this.#users) if (timingSafeEqual(h, u.hash)) found = { kind: 'user', principal: u.principal };
    return found;
  }

  identify(req: http.IncomingMessage): ConsoleViewer {
    const token = bearer(req) ?? cookie(req, SESSION_COOKIE);
    const known = token ? this.recognise(token) : undefined;
    if (known?.kind === 'user') {
      const who = `${known.principal.platform}:${known.principal.tenant}:${known.principal.user}`;
      return { allowed: true, via: 'user', principal: known.principal, operator: this.#operators.has(who) };
    }
    if (known?.kind === 'console-token') return { allowed: true, via: 'console-token', principal: null, operator: false };
    return { allowed: this.#tokenHash === undefined, via: this.#tokenHash === undefined ? 'open' : 'none', principal: null, operator: false };
  }

  /**
   * On a loopback bind, the request must be addressed to a loopback name: a page on another site
   * whose name was re-pointed at 127.0.0.1 (DNS rebinding) sends its own name as Host.
   */
  hostAllowed(req: http.IncomingMessage): boolean {
    if (!this.#loopbackBind) return true;
    const host = req.headers.host;
    if (!host) return false;
    try {
      return isLoopbackHost(new URL(`http://${host}`).hostname);
    } catch {
      return false;
    }
  }
}

/** The request comes from a page of this same origin (a form of the console), not from another site. */
export function sameOrigin(req: http.IncomingMessage): boolean {
  const from = req.headers.origin ?? req.headers.referer;
  if (!from || from === 'null' || !req.headers.host) return false;
  try {
    return new URL(from).host === req.headers.host;
  } catch {
    return false;
  }
}

function bearer(req: http.IncomingMessage): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m?.[1];
}

function cookie(req: http.IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** The sign-in cookie: HttpOnly (no script reads it), SameSite=Strict (no other site sends it), /console only. */
export function sessionCookie(token: string): string {
  return `${SESSION_COOKIE}=${encodeURIComponent(token)}; Path=/console; HttpOnly; SameSite=Strict`;
}

export function clearedSessionCookie(): string {
  return `${SESSION_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0`;
}
