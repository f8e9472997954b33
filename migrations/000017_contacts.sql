-- Up Migration
-- The contacts written by the `crm.upsert-contact` tool (the `crm-from-email` workflow): unique on
-- the step's idempotency key, so a re-run step finds the contact it already wrote instead of
-- writing a second. The app's role gets its grants like every table of the schema
-- (src/db/app-role.ts, after each migration run).
CREATE TABLE tollgate.contacts (
  id              text PRIMARY KEY,
  idempotency_key text NOT NULL UNIQUE,
  run_id          text,
  name            text,
  email           text,
  company         text,
  phone           text,
  title           text,
  notes           text,
  created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX contacts_email_idx ON tollgate.contacts (lower(email)) WHERE email IS NOT NULL;

-- Down Migration
DROP TABLE tollgate.contacts;
