/**
 * Who is looking at the console, and may they.
 *
 * - Access. Without `TOLLGATE_CONSOLE_TOKEN` the console is open to whoever reaches it, which the
 *   bind rule (bind.ts) limits to this machine; requests must then name a loopback Host too, so
 *   a web page elsewhere cannot read it through DNS rebinding. With the token set, every request
 *   needs it, a personal token or a live session.
 * - Identity, from one of two sources. A session made by signing in through OpenID Connect
 *   (oidc.ts, sessions.ts: the principal chat knows the person by). Or, as a fallback for machines
 *   without an identity provider, a personal token whose sha256 is listed under `console.users` in
 *   the project configuration (`"slack:T1:U1": "<sha256 hex>"`). Either way they are that
 *   principal, and their Retry and Cancel go to the runtime, which authorises them like a click in
 *   chat (the requester or an operator). The console token alone reads, never acts. An ended
 *   session (signed out, expired, revoked) is nobody.
 * - A token comes as `Authorization: Bearer <token>`, or from the sign-in form as an HttpOnly,
 *   SameSite=Strict cookie scoped to /console; a session as an HttpOnly, SameSite=Lax cookie.
 * - Forms that change something must come from the console's own origin (`sameOrigin`: the Origin
 *   or Referer header names the Host the request was sent to) and carry the viewer's CSRF token
 *   (`viewer.csrf`, put in every form by `csrfField`, checked by the guard for every POST). The
 *   token is an HMAC keyed with the secret the browser's cookie holds: the session's secret, the
 *   personal or console token of the sign-in cookie, or, for a browser with neither (the open
 *   console, the sign-in page), a random secret in a cookie of its own (`tollgate_console_anon`).
 *   Another site can neither read that cookie nor compute the token. A request that brings its
 *   credential in the Authorization header needs no token: a browser never adds that header by
 *   itself, so no other site can make it send one.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { isLoopbackHost } from '../common/loopback.ts';
import { formatPrincipal, parsePrincipal, type Principal } from '../common/principals.ts';
import { randomSecret, SESSION_COOKIE_NAME, type ConsoleSessions } from './sessions.ts';

export const SESSION_COOKIE = 'tollgate_console';
/** The CSRF secret of a browser with no credential cookie (the open console, the sign-in page). */
export const ANON_COOKIE = 'tollgate_console_anon';
/** The form field that carries the CSRF token. */
export const CSRF_FIELD = 'csrf';

export interface ConsoleViewer {
  /** May this request see the console at all. */
  allowed: boolean;
  /**
   * How it was let in: no token needed (loopback, no TOLLGATE_CONSOLE_TOKEN), the console token, a
   * personal token, or a session made by signing in through OpenID Connect.
   */
  via: 'open' | 'console-token' | 'user' | 'session' | 'none';
  /** The signed-in person; null: read-only. */
  principal: Principal | null;
  /** The principal is in the project's `operators` (shown, never used to authorise: the runtime does). */
  operator: boolean;
  /** The CSRF token this viewer's forms carry (`csrfField`), bound to their session or cookie. */
  csrf: string;
  /** A session cookie came that names no live session: it was signed out, has expired or was revoked. */
  sessionEnded?: boolean;
}

/** A viewer as the guard sees it: whether the request needs the CSRF token, and a cookie to set. */
export interface Identified {
  viewer: ConsoleViewer;
  /** The credential came in the Authorization header, which no other site can make a browser send. */
  csrfExempt: boolean;
  /** The anonymous CSRF cookie, for a browser that has no cookie of ours yet. */
  setCookie?: string;
}

export interface ConsoleAuthOptions {
  /** TOLLGATE_CONSOLE_TOKEN */
  token: string | undefined;
  /** `console.users`: principal → sha256 (hex) of their personal token. */
  users: Readonly<Record<string, string>>;
  operators: readonly string[];
  /** The server listens on a loopback address only. */
  loopbackBind: boolean;
  /** Sessions signed in through OpenID Connect; absent when no identity provider is configured. */
  sessions?: ConsoleSessions | undefined;
  /** "Slack", "Microsoft" …: the sign-in page's "Sign in with …"; absent without an identity provider. */
  provider?: string | undefined;
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** The CSRF token of a browser whose cookie holds `secret`. */
function csrfToken(secret: string): string {
  return createHmac('sha256', secret).update('tollgate console csrf v1').digest('base64url');
}

export class ConsoleAuth {
  readonly #tokenHash: Buffer | undefined;
  readonly #users: { hash: Buffer; principal: Principal }[];
  readonly #operators: ReadonlySet<string>;
  readonly #loopbackBind: boolean;
  readonly #sessions: ConsoleSessions | undefined;
  /** The identity provider's name for "Sign in with …", when one is configured. */
  readonly provider: string | undefined;

  constructor(opts: ConsoleAuthOptions) {
    this.#tokenHash = opts.token ? sha256(opts.token) : undefined;
    this.#users = Object.entries(opts.users).map(([who, hex]) => ({ hash: Buffer.from(hex, 'hex'), principal: parsePrincipal(who) }));
    this.#operators = new Set(opts.operators);
    this.#loopbackBind = opts.loopbackBind;
    this.#sessions = opts.sessions;
    this.provider = opts.provider;
  }

  /** What a presented token is: the console token, a person's, or nothing we know. Compared in constant time. */
  recognise(token: string): { kind: 'console-token' } | { kind: 'user'; principal: Principal } | undefined {
    const h = sha256(token);
    let found: ReturnType<ConsoleAuth['recognise']>;
    if (this.#tokenHash && timingSafeEqual(h, this.#tokenHash)) found = { kind: 'console-token' };
    for (const u of this.#users) if (timingSafeEqual(h, u.hash)) found = { kind: 'user', principal: u.principal };
    return found;
  }

  /** Who this request is, by its Authorization header, its session cookie, or its token cookie, in that order. */
  async identify(req: http.IncomingMessage): Promise<Identified> {
    const header = bearer(req);
    if (header) return { viewer: this.#byToken(header) ?? this.#nobody(csrfToken(header)), csrfExempt: true };
    const sessionSecret = cookie(req, SESSION_COOKIE_NAME);
    let sessionEnded = false;
    if (sessionSecret && this.#sessions) {
      const s = await this.#sessions.find(sessionSecret);
      if (s) {
        const principal = { ...parsePrincipal(s.principal), ...(s.name ? { name: s.name } : {}) };
        const viewer: ConsoleViewer = { allowed: true, via: 'session', principal, operator: this.#operators.has(s.principal), csrf: csrfToken(sessionSecret) };
        return { viewer, csrfExempt: false };
      }
      sessionEnded = true;
    }
    const token = cookie(req, SESSION_COOKIE);
    const known = token ? this.#byToken(token) : undefined;
    if (known) return { viewer: known, csrfExempt: false };
    const anon = cookie(req, ANON_COOKIE);
    const secret = anon && /^[A-Za-z0-9_-]{43}$/.test(anon) ? anon : randomSecret();
    return {
      viewer: { ...this.#nobody(csrfToken(secret)), ...(sessionEnded ? { sessionEnded } : {}) },
      csrfExempt: false,
      ...(secret === anon ? {} : { setCookie: `${ANON_COOKIE}=${secret}; Path=/console; HttpOnly; SameSite=Strict` }),
    };
  }

  /** The form's CSRF token is this viewer's; compared in constant time. */
  csrfMatches(viewer: ConsoleViewer, submitted: string | null | undefined): boolean {
    if (!submitted) return false;
    const a = Buffer.from(submitted);
    const b = Buffer.from(viewer.csrf);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  #byToken(token: string): ConsoleViewer | undefined {
    const known = this.recognise(token);
    if (known?.kind === 'user') {
      const operator = this.#operators.has(formatPrincipal(known.principal));
      return { allowed: true, via: 'user', principal: known.principal, operator, csrf: csrfToken(token) };
    }
    if (known?.kind === 'console-token') return { allowed: true, via: 'console-token', principal: null, operator: false, csrf: csrfToken(token) };
    return undefined;
  }

  #nobody(csrf: string): ConsoleViewer {
    const open = this.#tokenHash === undefined;
    return { allowed: open, via: open ? 'open' : 'none', principal: null, operator: false, csrf };
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

/** A cookie of the request, by name. */
export function cookie(req: http.IncomingMessage, name: string): string | undefined {
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
