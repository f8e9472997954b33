-- Up Migration
-- The run journal: one row per run, one per step (keyed by the step's index in the workflow's
-- deterministic order, with its name checked on replay), and an append-only event log. Every
-- state change of a run writes its event in the same statement or transaction (invariant 1).

CREATE TABLE tollgate.runs (
  id                  text PRIMARY KEY,
  workflow            text NOT NULL,
  workflow_version    integer NOT NULL,
  status              text NOT NULL CHECK (status IN (
                        'queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled',
                        'compensating', 'compensated', 'compensation_failed')),
  -- why a waiting run waits ('sleep', 'retry', 'approval') and until when (null: an event wakes it)
  wait_reason         text,
  wake_at             timestamptz,
  input               jsonb NOT NULL,
  output              jsonb,
  error               jsonb,
  -- who asked (a principal: {platform, tenant, user}) and where (chat channel/thread), for the adapters
  requester           jsonb,
  origin              jsonb,
  cancel_requested_at timestamptz,
  cancel_requested_by jsonb,
  executor            text,
  recovery_attempts   integer NOT NULL DEFAULT 0,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  started_at          timestamptz,
  finished_at         timestamptz
);
CREATE INDEX runs_created_at_idx ON tollgate.runs (created_at DESC);
CREATE INDEX runs_status_idx ON tollgate.runs (status, created_at DESC);

CREATE TABLE tollgate.steps (
  run_id          text NOT NULL REFERENCES tollgate.runs (id),
  idx             integer NOT NULL,
  name            text NOT NULL,
  -- step | sleep | now | uuid (and later tool, approval, model)
  kind            text NOT NULL,
  status          text NOT NULL CHECK (status IN (
                    'running', 'retrying', 'sleeping', 'succeeded', 'failed',
                    'compensating', 'compensated', 'compensation_failed')),
  input           jsonb,
  output          jsonb,
  error           jsonb,
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,
  wake_at         timestamptz,
  started_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, idx)
);

CREATE TABLE tollgate.events (
  id         bigserial PRIMARY KEY,
  run_id     text REFERENCES tollgate.runs (id),
  type       text NOT NULL,
  step_idx   integer,
  actor      jsonb,
  payload    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX events_run_idx ON tollgate.events (run_id, id);

-- Live worker processes: a process whose heartbeat is stale is dead, and its jobs are unlocked.
CREATE TABLE tollgate.worker_heartbeats (
  process_id  text PRIMARY KEY,
  worker_ids  text[] NOT NULL DEFAULT '{}',
  hostname    text,
  pid         integer,
  started_at  timestamptz NOT NULL DEFAULT now(),
  beat_at     timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE tollgate.worker_heartbeats;
DROP TABLE tollgate.events;
DROP TABLE tollgate.steps;
DROP TABLE tollgate.runs;
