-- The chat layer's SQL functions and triggers: the one source of their bodies. Not a migration:
-- src/db/migrate.ts applies this file after the migrations whenever its text changed (its sha256
-- is kept in tollgate.function_files), in one transaction, so it must stay idempotent (CREATE OR
-- REPLACE only). Change a body here, never by pasting it into a
-- new migration.

-- Schedules a `chat-deliver` job, coalescing with a pending one (job key, job_key_mode 'replace':
-- a burst of events while a delivery is pending is one job, hence one update of the message).
-- Graphile's add_job clears the key of a locked job with that key and inserts a fresh one, but
-- adds nothing when a worker locks the pending job between its two statements (its ON CONFLICT
-- update skips locked jobs): that job may already have read the old state, so the change would
-- never be shown. Calling add_job again then sees the lock, clears the key and inserts, so the
-- message keeps one pending job. Only if that race repeats three times is a job without a key
-- added: a spare delivery is harmless (it finds nothing changed), a missing one is not.
-- Failed deliveries do not fail their job (the outbox keeps its own backoff in chat_messages), so
-- a message never gathers a pile of retrying jobs.
--
-- The usual case, a key with no job or with a pending one, is one statement written as add_jobs
-- writes it (graphile-worker is pinned to 0.17, whose _private_jobs this is; src/db/queries/jobs.ts
-- `newKeyedJobs` does the same for advance jobs): no task and queue upserts, no clearing of locked
-- keys, no nested functions (add_job's calls had the largest total time of any statement in
-- pg_stat_statements over the Slack bench's bursts). When that
-- statement writes nothing (the pending job is locked or out of attempts, or the task has no row
-- yet), add_job does it the long way.
CREATE OR REPLACE FUNCTION tollgate.chat_enqueue(payload json, job_key text, run_at timestamptz DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  INSERT INTO graphile_worker._private_jobs AS jobs (task_id, payload, run_at, max_attempts, key)
    SELECT t.id, chat_enqueue.payload, coalesce(chat_enqueue.run_at, now()), 25, chat_enqueue.job_key
      FROM graphile_worker._private_tasks t WHERE t.identifier = 'chat-deliver'
  ON CONFLICT (key) DO UPDATE SET
    job_queue_id = NULL, task_id = EXCLUDED.task_id, payload = EXCLUDED.payload, run_at = EXCLUDED.run_at,
    max_attempts = EXCLUDED.max_attempts, priority = 0, flags = NULL, revision = jobs.revision + 1,
    attempts = 0, last_error = NULL, updated_at = now()
    WHERE jobs.locked_at IS NULL AND jobs.attempts < jobs.max_attempts
  RETURNING jobs.id INTO v_id;
  IF v_id IS NOT NULL THEN
    PERFORM pg_notify('jobs:insert', '{"r":' || random()::text || ',"count":1}');
    RETURN;
  END IF;
  FOR i IN 1..3 LOOP
    SELECT (graphile_worker.add_job('chat-deliver', payload, run_at => run_at, job_key => job_key,
              job_key_mode => 'replace', max_attempts => 25)).id INTO v_id;
    IF v_id IS NOT NULL THEN
      RETURN;
    END IF;
  END LOOP;
  PERFORM graphile_worker.add_job('chat-deliver', payload, run_at => run_at, max_attempts => 25);
END $$;

-- Every event of a run started from a chat (listed in chat_runs) schedules the re-rendering of
-- its messages, in the event's own transaction, so it cannot be lost and is not seen before the
-- state is. An approval event (approval.requested, .decided, .approved, .rejected, .expired,
-- .escalated, .voided, .cancelled …) also schedules the delivery of that approval's copies.
-- Runs started elsewhere pay one miss on chat_runs' primary key.
-- The events of one statement or transaction mostly come in runs of the same run (a step's
-- success and the next one's start; a decision, its approval and the run's resumption): the job
-- the first of them scheduled runs after the commit and renders them all, so the others skip
-- add_job (each call also clears keys, upserts and notifies, and in a burst waits on the same
-- job row). The key last scheduled is kept in a transaction-local setting, which a rolled-back
-- savepoint restores with the job it scheduled.
CREATE OR REPLACE FUNCTION tollgate.chat_enqueue_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  run_key text := 'chat:run:' || NEW.run_id;
  apr_key text;
BEGIN
  IF EXISTS (SELECT 1 FROM tollgate.chat_runs c WHERE c.run_id = NEW.run_id) THEN
    IF current_setting('tollgate.chat_run_scheduled', true) IS DISTINCT FROM run_key THEN
      PERFORM tollgate.chat_enqueue(json_build_object('runId', NEW.run_id), run_key);
      PERFORM set_config('tollgate.chat_run_scheduled', run_key, true);
    END IF;
    IF NEW.type LIKE 'approval.%' AND NEW.payload ? 'approvalId' THEN
      apr_key := 'chat:apr:' || (NEW.payload->>'approvalId');
      IF current_setting('tollgate.chat_apr_scheduled', true) IS DISTINCT FROM apr_key THEN
        PERFORM tollgate.chat_enqueue(json_build_object('approvalId', NEW.payload->>'approvalId'), apr_key);
        PERFORM set_config('tollgate.chat_apr_scheduled', apr_key, true);
      END IF;
    END IF;
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER events_chat_delivery AFTER INSERT ON tollgate.events
  FOR EACH ROW WHEN (NEW.run_id IS NOT NULL) EXECUTE FUNCTION tollgate.chat_enqueue_delivery();

-- A run whose origin is a chat platform (src/runtime/origin.ts: anything but the CLI) is listed
-- in chat_runs when it is created.
CREATE OR REPLACE FUNCTION tollgate.chat_runs_register() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tollgate.chat_runs (run_id, platform) VALUES (NEW.id, NEW.origin->>'platform') ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER runs_chat_register AFTER INSERT ON tollgate.runs
  FOR EACH ROW WHEN (NEW.origin->>'platform' IS NOT NULL AND NEW.origin->>'platform' <> 'cli')
  EXECUTE FUNCTION tollgate.chat_runs_register();
