/**
 * The web console's sessions (`tollgate.console_sessions`) and its OpenID Connect sign-ins under
 * way (`tollgate.console_oidc_logins`), migration 000024. Secrets are stored as their sha256 only:
 * the caller hashes (src/console/sessions.ts), these functions never see a cookie.
 */
import type { Queryable } from '../queryable.ts';

export interface ConsoleSessionRow {
  id: string;
  principal: string;
  name: string | null;
  issuer: string;
  created_at: Date;
  last_seen_at: Date;
  expires_at: Date;
}

const SESSION_COLUMNS = 'id, principal, name, issuer, created_at, last_seen_at, expires_at';

export async function insertConsoleSession(
  q: Queryable,
  s: { id: string; secretHash: Buffer; principal: string; name: string | null; issuer: string; maxMs: number },
): Promise<void> {
  await q.query(
    `INSERT INTO tollgate.console_sessions (id, secret_hash, principal, name, issuer, expires_at)
       VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6::double precision / 1000))`,
    [s.id, s.secretHash, s.principal, s.name, s.issuer, s.maxMs],
  );
}

/**
 * The live session with this secret: not past its absolute expiry, used within `idleMs`. Its
 * `last_seen_at` is moved on at most once a minute (`touchAfterMs`), so reading pages does not write
 * a row per request.
 */
export async function findLiveConsoleSession(q: Queryable, secretHash: Buffer, idleMs: number): Promise<ConsoleSessionRow | undefined> {
  const { rows } = await q.query<ConsoleSessionRow & { stale: boolean }>(
    `SELECT ${SESSION_COLUMNS}, last_seen_at < now() - interval '1 minute' AS stale
       FROM tollgate.console_sessions
      WHERE secret_hash = $1
        AND expires_at > now()
        AND last_seen_at > now() - make_interval(secs => $2::double precision / 1000)`,
    [secretHash, idleMs],
  );
  const row = rows[0];
  if (!row) return undefined;
  if (row.stale) await q.query('UPDATE tollgate.console_sessions SET last_seen_at = now() WHERE id = $1', [row.id]);
  const { stale: _stale, ...session } = row;
  return session;
}

/** Sign-out: the session with this secret is gone. */
export async function deleteConsoleSessionBySecret(q: Queryable, secretHash: Buffer): Promise<boolean> {
  const { rowCount } = await q.query('DELETE FROM tollgate.console_sessions WHERE secret_hash = $1', [secretHash]);
  return (rowCount ?? 0) > 0;
}

/** `tollgate console sessions revoke <id>`. */
export async function deleteConsoleSession(q: Queryable, id: string): Promise<ConsoleSessionRow | undefined> {
  const { rows } = await q.query<ConsoleSessionRow>(`DELETE FROM tollgate.console_sessions WHERE id = $1 RETURNING ${SESSION_COLUMNS}`, [id]);
  return rows[0];
}

/** `tollgate console sessions list`: every session that is still live, newest first. */
export async function listLiveConsoleSessions(q: Queryable, idleMs: number): Promise<ConsoleSessionRow[]> {
  const { rows } = await q.query<ConsoleSessionRow>(
    `SELECT ${SESSION_COLUMNS} FROM tollgate.console_sessions
      WHERE expires_at > now() AND last_seen_at > now() - make_interval(secs => $1::double precision / 1000)
      ORDER BY created_at DESC, id DESC`,
    [idleMs],
  );
  return rows;
}

/** Rows that can never be used again (expired sessions, sign-ins never finished): removed at each sign-in. */
export async function pruneConsoleSignIns(q: Queryable, idleMs: number): Promise<void> {
  await q.query(
    `DELETE FROM tollgate.console_sessions
      WHERE expires_at <= now() OR last_seen_at <= now() - make_interval(secs => $1::double precision / 1000)`,
    [idleMs],
  );
  await q.query('DELETE FROM tollgate.console_oidc_logins WHERE expires_at <= now()');
}

export async function insertOidcLogin(
  q: Queryable,
  l: { stateHash: Buffer; nonce: string; codeVerifier: string; browserHash: Buffer; ttlMs: number },
): Promise<void> {
  await q.query(
    `INSERT INTO tollgate.console_oidc_logins (state_hash, nonce, code_verifier, browser_hash, expires_at)
       VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::double precision / 1000))`,
    [l.stateHash, l.nonce, l.codeVerifier, l.browserHash, l.ttlMs],
  );
}

/** Takes a sign-in under way, once: a second callback with the same `state` finds nothing. */
export async function takeOidcLogin(
  q: Queryable,
  stateHash: Buffer,
): Promise<{ nonce: string; codeVerifier: string; browserHash: Buffer; expired: boolean } | undefined> {
  const { rows } = await q.query<{ nonce: string; code_verifier: string; browser_hash: Buffer; expired: boolean }>(
    `DELETE FROM tollgate.console_oidc_logins WHERE state_hash = $1
      RETURNING nonce, code_verifier, browser_hash, expires_at <= now() AS expired`,
    [stateHash],
  );
  const r = rows[0];
  return r ? { nonce: r.nonce, codeVerifier: r.code_verifier, browserHash: r.browser_hash, expired: r.expired } : undefined;
}
