-- Up Migration
-- Free-text requests the model understood (issue 8): what Tollgate proposes to start, shown in the
-- thread with Confirm and Edit (src/chat/proposals.ts). Nothing starts before Confirm. Confirming
-- sets confirmed_at and run_id in the transaction that creates the run, under the row's lock, so
-- a second Confirm (a double click, a platform's re-send) starts nothing.
-- The app role's grants cover every table of the schema (src/db/app-role.ts), this one included.
CREATE TABLE tollgate.chat_proposals (
  id           text PRIMARY KEY,
  workflow     text NOT NULL,
  version      int NOT NULL,
  -- The input checked with the workflow's schema, with the real values (re-hydrated inside
  -- Tollgate: the model saw placeholders).
  input        jsonb NOT NULL,
  -- The same parameters as text, as a form submits them: what the message shows, what Edit
  -- prefills, and what Confirm checks again exactly as a form start does.
  params       jsonb NOT NULL,
  -- Who asked (a principal): the only one who may confirm.
  asker        jsonb NOT NULL,
  -- Where it was asked (a chat place: platform, tenant, conversation, thread, address); the
  -- run's live message goes there.
  place        jsonb NOT NULL,
  -- The outbox row (tollgate.chat_messages) showing the proposal, redrawn once it is confirmed.
  message_id   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  confirmed_at timestamptz,
  run_id       text REFERENCES tollgate.runs (id),
  CHECK ((confirmed_at IS NULL) = (run_id IS NULL))
);
-- Retention deletes proposals by age (src/audit/retention.ts), oldest first.
CREATE INDEX chat_proposals_created_idx ON tollgate.chat_proposals (created_at);

-- Down Migration
DROP TABLE tollgate.chat_proposals;
