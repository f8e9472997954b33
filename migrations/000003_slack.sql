-- Up Migration
-- Slack adapter tables (numbered 000003: 000002 is taken by the approvals branch).
--
-- slack_deliveries: every Slack request that changed something, keyed by what Slack sends again
-- on a retry (event_id for Events API deliveries; trigger_id for slash commands and clicks;
-- view id for modal submissions). Written in the same transaction as the intent it carried, so
-- a retried or duplicated delivery finds its key and does nothing (Slack re-sends after 3 s).
CREATE TABLE tollgate.slack_deliveries (
  key         text PRIMARY KEY,
  kind        text NOT NULL,
  run_id      text,
  received_at timestamptz NOT NULL DEFAULT now()
);

-- chat_messages: the outbox of messages Tollgate keeps in a chat. One row per message copy:
-- where it goes (channel, thread), what Slack called it once posted (ts), and a hash of the last
-- content Slack accepted, so a delivery job only calls chat.update when the rendering changed.
-- kind: 'run' (the live run message, rendered from the run's RunView), 'reply' (a fixed
-- message in `body`); 'approval' is reserved for the approval copies (thread and DMs).
CREATE TABLE tollgate.chat_messages (
  id          text PRIMARY KEY,
  platform    text NOT NULL DEFAULT 'slack',
  kind        text NOT NULL,
  run_id      text REFERENCES tollgate.runs (id),
  approval_id text,
  channel     text NOT NULL,
  thread_ts   text,
  ts          text,
  body        jsonb,
  posted_hash text,
  -- set from a 429's Retry-After: no call for this message before then
  not_before  timestamptz,
  attempts    integer NOT NULL DEFAULT 0,
  last_error  text,
  -- Slack refused this message for good (not_in_channel, channel_not_found …): no more attempts
  given_up_at timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_messages_run_idx ON tollgate.chat_messages (run_id) WHERE run_id IS NOT NULL;
CREATE UNIQUE INDEX chat_messages_run_copy_idx ON tollgate.chat_messages (run_id, channel, coalesce(thread_ts, '')) WHERE kind = 'run';

-- Schedules a delivery job, coalescing with a pending one (job key, job_key_mode 'replace').
-- Graphile's add_job silently adds nothing when, between its two statements, a worker locks the
-- pending job with that key (its ON CONFLICT update skips locked jobs): that job may already have
-- read the old state, so the change would never be shown. When add_job returns no job, a job
-- without a key is added instead: a spare delivery is harmless (it finds nothing changed), a
-- missing one is not.
CREATE FUNCTION tollgate.slack_enqueue(payload json, job_key text, run_at timestamptz DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  SELECT (graphile_worker.add_job('slack-deliver', payload, run_at => run_at, job_key => job_key,
            job_key_mode => 'replace', max_attempts => 25)).id INTO v_id;
  IF v_id IS NULL THEN
    PERFORM graphile_worker.add_job('slack-deliver', payload, run_at => run_at, max_attempts => 25);
  END IF;
END $$;

-- Every event of a run that was started from Slack schedules the re-rendering of its messages,
-- in the event's own transaction (so it cannot be lost and is not seen before the state is).
-- One job key per run: a burst of step events while a delivery is pending is one job, hence one
-- chat.update. Runs started elsewhere pay one primary-key lookup.
CREATE FUNCTION tollgate.slack_enqueue_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM tollgate.runs r WHERE r.id = NEW.run_id AND r.origin->>'platform' = 'slack') THEN
    PERFORM tollgate.slack_enqueue(json_build_object('runId', NEW.run_id), 'slack:run:' || NEW.run_id);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER events_slack_delivery AFTER INSERT ON tollgate.events
  FOR EACH ROW WHEN (NEW.run_id IS NOT NULL) EXECUTE FUNCTION tollgate.slack_enqueue_delivery();

-- Down Migration
DROP TRIGGER events_slack_delivery ON tollgate.events;
DROP FUNCTION tollgate.slack_enqueue_delivery();
DROP FUNCTION tollgate.slack_enqueue(json, text, timestamptz);
DROP TABLE tollgate.chat_messages;
DROP TABLE tollgate.slack_deliveries;
