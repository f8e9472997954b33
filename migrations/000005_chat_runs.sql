-- Up Migration
-- The Slack delivery trigger on tollgate.events used to look up each event's run to see whether
-- it came from Slack: a probe of the large, busy runs table for every event of every run, about
-- 15% of runs/s in the benchmark for runs that have no chat at all. Chat-origin runs are now
-- listed in a small table of their own, filled when such a run is created, and the trigger probes
-- that instead (a miss on a small index for every other run).
CREATE TABLE tollgate.chat_runs (
  run_id   text PRIMARY KEY REFERENCES tollgate.runs (id),
  platform text NOT NULL
);
INSERT INTO tollgate.chat_runs (run_id, platform)
  SELECT id, origin->>'platform' FROM tollgate.runs WHERE origin->>'platform' IS NOT NULL AND origin->>'platform' <> 'cli';

CREATE FUNCTION tollgate.chat_runs_register() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tollgate.chat_runs (run_id, platform) VALUES (NEW.id, NEW.origin->>'platform') ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;

CREATE TRIGGER runs_chat_register AFTER INSERT ON tollgate.runs
  FOR EACH ROW WHEN (NEW.origin->>'platform' IS NOT NULL AND NEW.origin->>'platform' <> 'cli')
  EXECUTE FUNCTION tollgate.chat_runs_register();

CREATE OR REPLACE FUNCTION tollgate.slack_enqueue_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM tollgate.chat_runs c WHERE c.run_id = NEW.run_id AND c.platform = 'slack') THEN
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
    IF NEW.type LIKE 'approval.%' AND NEW.payload ? 'approvalId' THEN
      PERFORM tollgate.slack_enqueue(json_build_object('approvalId', NEW.payload->>'approvalId'), 'slack:apr:' || (NEW.payload->>'approvalId'));
    END IF;
  END IF;
  RETURN NULL;
END $$;
DROP TRIGGER runs_chat_register ON tollgate.runs;
DROP FUNCTION tollgate.chat_runs_register();
DROP TABLE tollgate.chat_runs;
