-- Up Migration
-- Poison runs: a run whose advance was interrupted (its worker died or lost it) more times than
-- the recovery limit allows is set aside as 'dead_letter' instead of being recovered again
-- (src/runtime/journal.ts claimRun). It is not terminal: a person takes it out with
-- `tollgate runs retry` or `tollgate runs cancel`. `runs.recovery_attempts` (000001) already
-- counts the recoveries; only the allowed statuses change.
ALTER TABLE tollgate.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE tollgate.runs ADD CONSTRAINT runs_status_check CHECK (status IN (
  'queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled',
  'compensating', 'compensated', 'compensation_failed', 'dead_letter'));

-- Down Migration
-- Code without dead letters recovers interrupted runs without limit: a dead-lettered run goes
-- back to 'running', the state its last interrupted advance left it in, to be swept and resumed.
-- Like every change of a run's state, with its event.
WITH r AS (UPDATE tollgate.runs SET status = 'running', updated_at = now() WHERE status = 'dead_letter' RETURNING id)
INSERT INTO tollgate.events (run_id, type, payload)
  SELECT id, 'run.dead_letter_reverted', '{"reason": "migration 000007_dead_letter rolled back"}'::jsonb FROM r;
ALTER TABLE tollgate.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE tollgate.runs ADD CONSTRAINT runs_status_check CHECK (status IN (
  'queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled',
  'compensating', 'compensated', 'compensation_failed'));
