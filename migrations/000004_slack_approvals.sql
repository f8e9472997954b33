-- Up Migration
-- Slack approval copies (issue 5, approvals half).
--
-- An approval of a run started from Slack is shown in several places: the run's live message
-- (kind 'run', which already renders the run's approvals), a copy in the run message's thread,
-- and a direct message to each Slack approver (kind 'approval', one row per copy). `copy` names
-- the copy ('thread' or the approver's principal), so re-delivering an approval never posts a
-- copy twice. A DM's channel is unknown until conversations.open names it: `dm_user` is whom to
-- open it with and `channel` stays NULL until then.
ALTER TABLE tollgate.chat_messages ALTER COLUMN channel DROP NOT NULL;
ALTER TABLE tollgate.chat_messages ADD COLUMN copy text;
ALTER TABLE tollgate.chat_messages ADD COLUMN dm_user text;
-- When the approver was reminded that the deadline is near (DM copies only).
ALTER TABLE tollgate.chat_messages ADD COLUMN reminded_at timestamptz;
CREATE UNIQUE INDEX chat_messages_approval_copy_idx ON tollgate.chat_messages (approval_id, copy) WHERE kind = 'approval';

-- Every event of a Slack-origin run still re-renders the run's messages (as in 000003); an
-- approval event (approval.requested, .decided, .approved, .rejected, .expired, .escalated,
-- .voided, .cancelled …) also schedules the delivery of that approval's copies, one job key per
-- approval so a burst of decisions is one update of each copy.
CREATE OR REPLACE FUNCTION tollgate.slack_enqueue_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM tollgate.runs r WHERE r.id = NEW.run_id AND r.origin->>'platform' = 'slack') THEN
    PERFORM tollgate.slack_enqueue(json_build_object('runId', NEW.run_id), 'slack:run:' || NEW.run_id);
    IF NEW.type LIKE 'approval.%' AND NEW.payload ? 'approvalId' THEN
      PERFORM tollgate.slack_enqueue(json_build_object('approvalId', NEW.payload->>'approvalId'), 'slack:apr:' || (NEW.payload->>'approvalId'));
    END IF;
  END IF;
  RETURN NULL;
END $$;

-- Down Migration
CREATE OR REPLACE FUNCTION tollgate.slack_enqueue_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM tollgate.runs r WHERE r.id = NEW.run_id AND r.origin->>'platform' = 'slack') THEN
    PERFORM tollgate.slack_enqueue(json_build_object('runId', NEW.run_id), 'slack:run:' || NEW.run_id);
  END IF;
  RETURN NULL;
END $$;
DROP INDEX tollgate.chat_messages_approval_copy_idx;
ALTER TABLE tollgate.chat_messages DROP COLUMN reminded_at;
ALTER TABLE tollgate.chat_messages DROP COLUMN dm_user;
ALTER TABLE tollgate.chat_messages DROP COLUMN copy;
DELETE FROM tollgate.chat_messages WHERE channel IS NULL;
ALTER TABLE tollgate.chat_messages ALTER COLUMN channel SET NOT NULL;
