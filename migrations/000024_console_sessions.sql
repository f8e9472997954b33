-- Up Migration
-- The web console's sign-in through OpenID Connect (src/console/oidc.ts, src/console/sessions.ts).
--
-- console_sessions: one row per signed-in browser. The cookie holds a random secret; only its
-- sha256 is stored (`secret_hash`), so a copy of this table signs nobody in. `id` (ses_…) is what
-- `tollgate console sessions list|revoke` shows and takes: it is not the secret. A session ends at
-- `expires_at` (absolute) or when unused for the idle limit (`last_seen_at`), by sign-out or by
-- revoke (the row is deleted either way).
CREATE TABLE tollgate.console_sessions (
  id            text PRIMARY KEY,
  secret_hash   bytea NOT NULL UNIQUE,
  principal     text NOT NULL,
  name          text,
  issuer        text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL
);
CREATE INDEX console_sessions_principal ON tollgate.console_sessions (principal);

-- console_oidc_logins: a sign-in under way, between the redirect to the identity provider and
-- its callback. Keyed by the sha256 of `state`; holds the nonce and the PKCE verifier server-side,
-- and the sha256 of the browser's binding cookie (the callback must come back to the browser that
-- started it). Taken once (DELETE … RETURNING), so a replayed `state` finds nothing; a few
-- minutes old, it has expired.
CREATE TABLE tollgate.console_oidc_logins (
  state_hash    bytea PRIMARY KEY,
  nonce         text NOT NULL,
  code_verifier text NOT NULL,
  browser_hash  bytea NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL
);
