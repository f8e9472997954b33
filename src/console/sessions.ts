/**
 * The console's sessions, kept server-side in PostgreSQL (src/db/queries/console-sessions.ts,
 * migration 000024): a sign-in through OpenID Connect makes one, and the browser keeps only a
 * random secret in an HttpOnly cookie. The table holds the secret's sha256, never the secret; the
 * session's public id (`ses_…`) is what `tollgate console sessions list|revoke` shows and takes.
 *
 * A session ends when unused for the idle limit (TOLLGATE_CONSOLE_SESSION_IDLE_MINUTES, default 8 h),
 * at its absolute expiry (TOLLGATE_CONSOLE_SESSION_MAX_HOURS, default 7 days), at sign-out (the row
 * is deleted) or when revoked. An ended session is nobody: it reads nothing when a console token is
 * configured, and decides nothing ever.
 *
 * The cookie is SameSite=Lax, not Strict: the sign-in ends with a redirect from the identity
 * provider's site to the callback and on to /console, a navigation that starts on another site.
 * Browsers send no Strict cookie on it, so the first page after signing in would come up signed
 * out. Lax cookies go along with top-level GET navigations only; every POST must still come from
 * the console's own pages (the Origin check) and carry the session's CSRF token (auth.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { newId } from '../common/ids.ts';
import {
  deleteConsoleSessionBySecret,
  findLiveConsoleSession,
  insertConsoleSession,
  pruneConsoleSignIns,
  type ConsoleSessionRow,
} from '../db/queries/console-sessions.ts';

export const SESSION_COOKIE_NAME = 'tollgate_console_session';

export const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** A random secret for a cookie: 256 bits, base64url. */
export const randomSecret = (): string => randomBytes(32).toString('base64url');

export interface SessionLimits {
  /** Unused this long, a session has ended. */
  idleMs: number;
  /** This long after sign-in, a session has ended however much it is used. */
  maxMs: number;
}

export class ConsoleSessions {
  readonly #pool: pg.Pool;
  readonly limits: SessionLimits;
  readonly #secure: boolean;

  constructor(opts: { pool: pg.Pool; limits: SessionLimits; secure: boolean }) {
    this.#pool = opts.pool;
    this.limits = opts.limits;
    this.#secure = opts.secure;
  }

  /** A new session for this person; the secret goes into the cookie only. */
  async create(s: { principal: string; name: string | null; issuer: string }): Promise<{ id: string; secret: string }> {
    await pruneConsoleSignIns(this.#pool, this.limits.idleMs);
    const id = newId('ses');
    const secret = randomSecret();
    await insertConsoleSession(this.#pool, { id, secretHash: sha256(secret), ...s, maxMs: this.limits.maxMs });
    return { id, secret };
  }

  /** The live session this cookie's secret names, or undefined (unknown, ended, signed out, revoked). */
  find(secret: string): Promise<ConsoleSessionRow | undefined> {
    return findLiveConsoleSession(this.#pool, sha256(secret), this.limits.idleMs);
  }

  async signOut(secret: string): Promise<void> {
    await deleteConsoleSessionBySecret(this.#pool, sha256(secret));
  }

  /** The cookie: HttpOnly (no script reads it), SameSite=Lax (see above), /console only, Secure behind TLS. */
  cookie(secret: string): string {
    return `${SESSION_COOKIE_NAME}=${secret}; Path=/console; HttpOnly; SameSite=Lax; Max-Age=${Math.floor(this.limits.maxMs / 1000)}${this.#secure ? '; Secure' : ''}`;
  }

  clearedCookie(): string {
    return `${SESSION_COOKIE_NAME}=; Path=/console; HttpOnly; SameSite=Lax; Max-Age=0${this.#secure ? '; Secure' : ''}`;
  }
}
