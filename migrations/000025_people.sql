-- Up Migration
-- People by name (issue 22, item 5). The principal stays the identity everywhere; this table only
-- says what to call someone: the display name a platform last gave for a principal (Slack's
-- users.info, Teams' from.name on every activity, later the OpenID Connect profile at sign-in),
-- where it came from, and when it was last written. Refreshed when a platform tells us something
-- new; never read to authorise anything.
CREATE TABLE tollgate.people (
  principal    text PRIMARY KEY,
  display_name text NOT NULL,
  -- Who said so: 'slack' (users.info), 'teams' (from.name), 'oidc' (the sign-in profile) …
  source       text NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- A decision keeps the name its decider had when they decided, beside the principal (null when
-- no platform had named them yet): a later rename changes the directory, not what was recorded.
ALTER TABLE tollgate.approval_decisions ADD COLUMN display_name text;

-- "Decided by me" in the console: a principal's decisions, newest first.
CREATE INDEX approval_decisions_principal_idx ON tollgate.approval_decisions (principal, decided_at DESC);

-- Down Migration
DROP INDEX tollgate.approval_decisions_principal_idx;
ALTER TABLE tollgate.approval_decisions DROP COLUMN display_name;
DROP TABLE tollgate.people;
