-- Up Migration
-- Governance: approval gates and their decisions, the purchase-order ledger, and a tamper-evident
-- event log (hash chains, append-only).

CREATE TABLE tollgate.approvals (
  id              text PRIMARY KEY,
  run_id          text NOT NULL REFERENCES tollgate.runs (id),
  step_idx        integer NOT NULL,
  name            text NOT NULL,
  -- pending → approved | rejected | expired; voided when the parameters changed before use;
  -- cancelled when its run was cancelled while it waited.
  -- (An escalation keeps the gate pending under a new policy: see `escalations`.)
  status          text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'voided', 'cancelled')),
  -- the policy resolved when the gate opened (or escalated): principals, quorum, self-approval
  policy          jsonb NOT NULL,
  summary         text NOT NULL,
  params          jsonb NOT NULL,
  params_hash     text NOT NULL,
  risk            text,
  rationale       text,
  -- the write tool call this approval covers (input hash defaults to params_hash)
  tool            text,
  tool_input      jsonb,
  tool_input_hash text,
  requester       jsonb,
  expires_at      timestamptz,
  on_timeout      jsonb,
  escalations     integer NOT NULL DEFAULT 0,
  -- set when the gate was approved by rule (e.g. below a threshold), not by a person
  auto_reason     text,
  superseded_by   text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  resolved_at     timestamptz
);
CREATE UNIQUE INDEX approvals_live_step_idx ON tollgate.approvals (run_id, step_idx) WHERE status <> 'voided';
CREATE INDEX approvals_pending_idx ON tollgate.approvals (created_at) WHERE status = 'pending';
CREATE INDEX approvals_run_idx ON tollgate.approvals (run_id, status);

-- One decision per approver per approval (invariant 4): the primary key makes a duplicate click a no-op.
CREATE TABLE tollgate.approval_decisions (
  approval_id text NOT NULL REFERENCES tollgate.approvals (id),
  principal   text NOT NULL,
  decision    text NOT NULL CHECK (decision IN ('approve', 'reject')),
  comment     text,
  via         text,
  decided_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (approval_id, principal)
);

-- The purchase-order ledger written by the `purchase-orders.create` tool: unique on the step's
-- idempotency key, so a re-run step finds the order it already wrote.
CREATE TABLE tollgate.purchase_orders (
  id              text PRIMARY KEY,
  idempotency_key text NOT NULL UNIQUE,
  run_id          text,
  vendor          text NOT NULL,
  amount          numeric(14, 2) NOT NULL,
  currency        text NOT NULL,
  reason          text NOT NULL,
  status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'void')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  voided_at       timestamptz
);

-- Set when retention purged a finished run's step inputs/outputs; such a run cannot be retried.
ALTER TABLE tollgate.runs ADD COLUMN journal_purged_at timestamptz;

-- Hash chains. One chain per run (chain key = run id) and one global chain (key '') for events
-- without a run. Each event stores its place (seq), the previous event's hash, a digest of its
-- payload and its own hash = sha256(prev_hash || header || payload_digest). The header and the
-- digest are separate so retention can drop a payload and the chain still verifies.
-- The chain head row is the lock that orders concurrent appends to the same chain; appends to
-- different runs never wait for each other.
CREATE TABLE tollgate.event_chains (
  chain         text PRIMARY KEY,
  seq           bigint NOT NULL DEFAULT 0,
  last_hash     bytea,
  -- scratch: the head before the latest append (UPDATE … RETURNING gives new values only)
  prev_hash     bytea,
  last_event_id bigint
);

ALTER TABLE tollgate.events
  ADD COLUMN seq bigint,
  ADD COLUMN prev_hash bytea,
  ADD COLUMN payload_digest bytea,
  ADD COLUMN hash bytea,
  ALTER COLUMN payload DROP NOT NULL;

-- What an event's hash covers besides its payload. jsonb's text form is canonical (sorted keys),
-- and the time is in epoch microseconds, so the session's time zone cannot change the result.
-- (Replayed on the way up; the current body lives in migrations/functions/audit_chain.sql.)
CREATE FUNCTION tollgate.event_link_hash(
  prev bytea, id bigint, run_id text, seq bigint, type text, step_idx integer, actor jsonb,
  created_at timestamptz, payload_digest bytea
) RETURNS bytea LANGUAGE sql STABLE AS $$
  SELECT sha256(
    coalesce(prev, '\x'::bytea)
    || convert_to(jsonb_build_array(id, run_id, seq, type, step_idx, actor,
                                    (extract(epoch FROM created_at) * 1000000)::bigint)::text, 'UTF8')
    || coalesce(payload_digest, '\x'::bytea))
$$;

CREATE FUNCTION tollgate.payload_digest(payload jsonb) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT sha256(convert_to(payload::text, 'UTF8'))
$$;

-- (Replayed on the way up; the current body lives in migrations/functions/audit_chain.sql.)
CREATE FUNCTION tollgate.events_chain_append() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  k text := coalesce(NEW.run_id, '');
BEGIN
  NEW.payload := coalesce(NEW.payload, '{}'::jsonb);
  NEW.payload_digest := tollgate.payload_digest(NEW.payload);
  LOOP
    UPDATE tollgate.event_chains c
       SET seq = c.seq + 1,
           prev_hash = c.last_hash,
           last_hash = tollgate.event_link_hash(c.last_hash, NEW.id, NEW.run_id, c.seq + 1, NEW.type,
                                                NEW.step_idx, NEW.actor, NEW.created_at, NEW.payload_digest),
           last_event_id = NEW.id
     WHERE c.chain = k
     RETURNING c.seq, c.prev_hash, c.last_hash INTO NEW.seq, NEW.prev_hash, NEW.hash;
    EXIT WHEN FOUND;
    INSERT INTO tollgate.event_chains (chain) VALUES (k) ON CONFLICT (chain) DO NOTHING;
  END LOOP;
  RETURN NEW;
END
$$;

-- Chain the events written before this migration, in id order.
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT * FROM tollgate.events ORDER BY id LOOP
    INSERT INTO tollgate.event_chains (chain) VALUES (coalesce(r.run_id, '')) ON CONFLICT (chain) DO NOTHING;
    WITH c AS (
      UPDATE tollgate.event_chains c
         SET seq = c.seq + 1,
             prev_hash = c.last_hash,
             last_hash = tollgate.event_link_hash(c.last_hash, r.id, r.run_id, c.seq + 1, r.type, r.step_idx,
                                                  r.actor, r.created_at, tollgate.payload_digest(r.payload)),
             last_event_id = r.id
       WHERE c.chain = coalesce(r.run_id, '')
       RETURNING c.seq, c.prev_hash, c.last_hash)
    UPDATE tollgate.events e SET seq = c.seq, prev_hash = c.prev_hash, hash = c.last_hash,
           payload_digest = tollgate.payload_digest(r.payload)
      FROM c WHERE e.id = r.id;
  END LOOP;
END
$$;

CREATE TRIGGER events_chain BEFORE INSERT ON tollgate.events
  FOR EACH ROW EXECUTE FUNCTION tollgate.events_chain_append();
CREATE UNIQUE INDEX events_chain_seq_idx ON tollgate.events (coalesce(run_id, ''), seq);

-- Append-only: no DELETE, no UPDATE, no TRUNCATE — with one sanctioned exception, retention,
-- which may set a payload to NULL and change nothing else (the digest stays, so the chain still
-- verifies). A trigger rather than REVOKE, because the application's role usually owns the table.
CREATE FUNCTION tollgate.events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.payload IS NULL
     AND (NEW.id, NEW.run_id, NEW.type, NEW.step_idx, NEW.actor, NEW.created_at, NEW.seq, NEW.prev_hash, NEW.payload_digest, NEW.hash)
         IS NOT DISTINCT FROM
         (OLD.id, OLD.run_id, OLD.type, OLD.step_idx, OLD.actor, OLD.created_at, OLD.seq, OLD.prev_hash, OLD.payload_digest, OLD.hash) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'tollgate.events is append-only: % refused%', TG_OP,
    CASE WHEN TG_OP = 'TRUNCATE' THEN '' ELSE ' on event ' || OLD.id END
    USING HINT = 'Events are the audit trail; only retention may drop a payload (set it to NULL, nothing else).',
          ERRCODE = 'TG001';
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON tollgate.events
  FOR EACH ROW EXECUTE FUNCTION tollgate.events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON tollgate.events
  FOR EACH STATEMENT EXECUTE FUNCTION tollgate.events_append_only();

-- Down Migration
DROP TRIGGER events_no_truncate ON tollgate.events;
DROP TRIGGER events_append_only ON tollgate.events;
DROP FUNCTION tollgate.events_append_only();
DROP INDEX tollgate.events_chain_seq_idx;
DROP TRIGGER events_chain ON tollgate.events;
DROP FUNCTION tollgate.events_chain_append();
DROP FUNCTION tollgate.payload_digest(jsonb);
DROP FUNCTION tollgate.event_link_hash(bytea, bigint, text, bigint, text, integer, jsonb, timestamptz, bytea);
UPDATE tollgate.events SET payload = '{}'::jsonb WHERE payload IS NULL;
ALTER TABLE tollgate.events
  DROP COLUMN seq, DROP COLUMN prev_hash, DROP COLUMN payload_digest, DROP COLUMN hash,
  ALTER COLUMN payload SET NOT NULL;
DROP TABLE tollgate.event_chains;
ALTER TABLE tollgate.runs DROP COLUMN journal_purged_at;
DROP TABLE tollgate.purchase_orders;
DROP TABLE tollgate.approval_decisions;
DROP TABLE tollgate.approvals;
