-- Up Migration
-- A keyed audit trail (issue 9 item 3).
--
-- 1. Every chain link becomes an HMAC-SHA256 under a key kept OUTSIDE the database (Tollgate's
--    TOLLGATE_AUDIT_KEY or <dataDir>/audit.key). PostgreSQL core has sha256() but no hmac(), so
--    HMAC(K, m) = sha256((K xor opad) || sha256((K xor ipad) || m)), with the two pads handed to
--    each session by Tollgate in its start-up options (tollgate.audit_ikey / tollgate.audit_okey):
--    never in a query text or a table. A session without them cannot append an event.
--    Existing events are re-linked under the key here: `audit verify` proves that nothing was
--    changed after this migration ran, not before.
-- 2. Checkpoints: the chains that changed since the last checkpoint are queued (one row per chain
--    per checkpoint interval, not per event), and `tollgate.audit_checkpoint()` appends to the
--    global chain an `audit.checkpoint` event naming each with its (seq, head hash). A run whose
--    events, chain row and run row were all deleted is still named by a keyed checkpoint.
-- 3. Decisions: each approval_decisions row is linked to the chained `approval.decided` event that
--    recorded it (event_id), and takes that event's time, so `audit verify` can compare them.
-- This migration needs the audit key in its session (Tollgate's pools carry it).

CREATE TABLE tollgate.audit_key (
  singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  -- HMAC(K, 'tollgate-audit-key-id'): names the key without revealing it
  fingerprint  bytea NOT NULL,
  introduced_at timestamptz NOT NULL DEFAULT now(),
  relinked     bigint NOT NULL DEFAULT 0,
  -- the first event that did not verify under the old unkeyed chain when it was re-linked
  legacy_broken_event bigint
);

-- The bytes a link covers (unchanged since 000002): the previous hash, a canonical header and the
-- payload's digest. jsonb's text form is canonical and the time is in epoch microseconds.
CREATE FUNCTION tollgate.event_link_message(
  prev bytea, id bigint, run_id text, seq bigint, type text, step_idx integer, actor jsonb,
  created_at timestamptz, payload_digest bytea
) RETURNS bytea LANGUAGE sql STABLE AS $$
  SELECT coalesce(prev, '\x'::bytea)
    || convert_to(jsonb_build_array(id, run_id, seq, type, step_idx, actor,
                                    (extract(epoch FROM created_at) * 1000000)::bigint)::text, 'UTF8')
    || coalesce(payload_digest, '\x'::bytea)
$$;

CREATE FUNCTION tollgate.audit_hmac(msg bytea) RETURNS bytea LANGUAGE plpgsql STABLE AS $$
DECLARE
  ik text := current_setting('tollgate.audit_ikey', true);
  ok text := current_setting('tollgate.audit_okey', true);
BEGIN
  IF coalesce(ik, '') = '' OR coalesce(ok, '') = '' THEN
    RAISE EXCEPTION 'tollgate.events: this session has no audit key, so it cannot append to the audit chain'
      USING HINT = 'Write events through Tollgate, whose connections carry the key (TOLLGATE_AUDIT_KEY or <dataDir>/audit.key); a link written without it could never be verified.',
            ERRCODE = 'TG002';
  END IF;
  RETURN sha256(decode(ok, 'hex') || sha256(decode(ik, 'hex') || msg));
END
$$;

-- (Replayed on the way up; the current body lives in migrations/functions/audit_chain.sql.)
CREATE OR REPLACE FUNCTION tollgate.event_link_hash(
  prev bytea, id bigint, run_id text, seq bigint, type text, step_idx integer, actor jsonb,
  created_at timestamptz, payload_digest bytea
) RETURNS bytea LANGUAGE sql STABLE AS $$
  SELECT tollgate.audit_hmac(tollgate.event_link_message(prev, id, run_id, seq, type, step_idx, actor, created_at, payload_digest))
$$;

-- Chains changed since the last checkpoint. The chain row's `checkpoint_due` flips once per
-- interval; only that first append queues the chain here.
CREATE TABLE tollgate.audit_pending (chain text PRIMARY KEY);
ALTER TABLE tollgate.event_chains
  ADD COLUMN checkpoint_due boolean NOT NULL DEFAULT false,
  -- scratch, like prev_hash: the flag before the latest append
  ADD COLUMN was_due boolean;

-- SECURITY DEFINER: the application's role appends events but has no right to write the chain
-- heads or the queue itself.
-- (Replayed on the way up; the current body lives in migrations/functions/audit_chain.sql.)
CREATE OR REPLACE FUNCTION tollgate.events_chain_append() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  k text := coalesce(NEW.run_id, '');
  queued boolean;
BEGIN
  NEW.payload := coalesce(NEW.payload, '{}'::jsonb);
  NEW.payload_digest := tollgate.payload_digest(NEW.payload);
  LOOP
    UPDATE tollgate.event_chains c
       SET seq = c.seq + 1,
           prev_hash = c.last_hash,
           last_hash = tollgate.event_link_hash(c.last_hash, NEW.id, NEW.run_id, c.seq + 1, NEW.type,
                                                NEW.step_idx, NEW.actor, NEW.created_at, NEW.payload_digest),
           last_event_id = NEW.id,
           was_due = c.checkpoint_due,
           checkpoint_due = true
     WHERE c.chain = k
     RETURNING c.seq, c.prev_hash, c.last_hash, c.was_due INTO NEW.seq, NEW.prev_hash, NEW.hash, queued;
    EXIT WHEN FOUND;
    INSERT INTO tollgate.event_chains (chain) VALUES (k) ON CONFLICT (chain) DO NOTHING;
  END LOOP;
  -- The global chain holds the checkpoints themselves; it is not checkpointed.
  IF NOT queued AND k <> '' THEN
    INSERT INTO tollgate.audit_pending (chain) VALUES (k) ON CONFLICT (chain) DO NOTHING;
  END IF;
  RETURN NEW;
END
$$;

-- Appends one `audit.checkpoint` event per `per_event` queued chains to the global chain, each
-- naming [chain, seq, hex(head hash)]; returns how many chains it named. Clearing the flag locks
-- each chain's head row until commit, so an append racing with it either is included (it
-- committed first) or queues the chain again (it flips the flag after).
CREATE FUNCTION tollgate.audit_checkpoint(per_event integer DEFAULT 1000) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  named bigint;
BEGIN
  WITH p AS (DELETE FROM tollgate.audit_pending RETURNING chain),
       c AS (UPDATE tollgate.event_chains c SET checkpoint_due = false FROM p
              WHERE c.chain = p.chain AND c.seq > 0 RETURNING c.chain, c.seq, c.last_hash),
       n AS (SELECT row_number() OVER (ORDER BY chain) AS i, chain, seq, last_hash FROM c),
       b AS (SELECT (i - 1) / per_event AS part, count(*) AS k,
                    jsonb_agg(jsonb_build_array(chain, seq, encode(last_hash, 'hex')) ORDER BY i) AS chains
               FROM n GROUP BY 1),
       ins AS (INSERT INTO tollgate.events (run_id, type, payload)
               SELECT NULL, 'audit.checkpoint', jsonb_build_object('chains', chains) FROM b ORDER BY part
               RETURNING id)
  SELECT coalesce(sum(k), 0) INTO named FROM b;
  RETURN named;
END
$$;

-- Links each decision to the event that recorded it, and gives it that event's time, so the
-- decision row can be compared with the chain. A trigger (only on approval.decided events, the
-- WHEN clause costs nothing for the others) rather than a change to the code that decides.
CREATE FUNCTION tollgate.approval_decision_link() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  UPDATE tollgate.approval_decisions d
     SET event_id = NEW.id, decided_at = NEW.created_at
   WHERE d.approval_id = NEW.payload->>'approvalId'
     AND d.principal = (NEW.actor->>'platform') || ':' || (NEW.actor->>'tenant') || ':' || (NEW.actor->>'user')
     AND d.event_id IS NULL;
  RETURN NULL;
END
$$;
ALTER TABLE tollgate.approval_decisions ADD COLUMN event_id bigint;
CREATE UNIQUE INDEX approval_decisions_event_idx ON tollgate.approval_decisions (event_id);
CREATE TRIGGER approval_decision_link AFTER INSERT ON tollgate.events
  FOR EACH ROW WHEN (NEW.type = 'approval.decided') EXECUTE FUNCTION tollgate.approval_decision_link();

-- Link the decisions recorded before this migration (by approval and principal; by run, step and
-- principal when retention already dropped the event's payload).
UPDATE tollgate.approval_decisions d
   SET event_id = m.event_id, decided_at = m.created_at
  FROM (SELECT DISTINCT ON (e.id) d2.approval_id, d2.principal, e.id AS event_id, e.created_at
          FROM tollgate.approval_decisions d2
          JOIN tollgate.approvals a ON a.id = d2.approval_id
          CROSS JOIN LATERAL (
            SELECT e.id, e.created_at FROM tollgate.events e
             WHERE e.type = 'approval.decided' AND e.run_id = a.run_id AND e.step_idx IS NOT DISTINCT FROM a.step_idx
               AND (e.actor->>'platform') || ':' || (e.actor->>'tenant') || ':' || (e.actor->>'user') = d2.principal
               AND (e.payload IS NULL OR e.payload->>'approvalId' = d2.approval_id)
             ORDER BY (e.payload IS NULL), abs(extract(epoch FROM e.created_at - d2.decided_at))
             LIMIT 1) e
         ORDER BY e.id, d2.decided_at) m
 WHERE d.approval_id = m.approval_id AND d.principal = m.principal AND d.event_id IS NULL;

-- Re-link every chained event under the key, chain by chain in order, noting the first that did
-- not verify under the old unkeyed formula (a pre-key edit: reported by `audit verify`).
ALTER TABLE tollgate.events DISABLE TRIGGER events_append_only;
DO $$
DECLARE
  r record;
  cur text;
  old_prev bytea;
  new_prev bytea;
  h bytea;
  n bigint := 0;
  broken bigint;
BEGIN
  FOR r IN SELECT e.*, coalesce(e.run_id, '') AS chain FROM tollgate.events e WHERE e.seq IS NOT NULL
            ORDER BY coalesce(e.run_id, ''), e.seq LOOP
    IF cur IS DISTINCT FROM r.chain THEN
      cur := r.chain;
      old_prev := NULL;
      new_prev := NULL;
    END IF;
    IF broken IS NULL AND (r.prev_hash IS DISTINCT FROM old_prev
        OR r.hash IS DISTINCT FROM sha256(tollgate.event_link_message(r.prev_hash, r.id, r.run_id, r.seq, r.type, r.step_idx, r.actor, r.created_at, r.payload_digest))
        OR (r.payload IS NOT NULL AND tollgate.payload_digest(r.payload) IS DISTINCT FROM r.payload_digest)) THEN
      broken := r.id;
    END IF;
    h := tollgate.event_link_hash(new_prev, r.id, r.run_id, r.seq, r.type, r.step_idx, r.actor, r.created_at, r.payload_digest);
    UPDATE tollgate.events SET prev_hash = new_prev, hash = h WHERE id = r.id;
    old_prev := r.hash;
    new_prev := h;
    n := n + 1;
  END LOOP;
  UPDATE tollgate.event_chains c SET last_hash = e.hash, prev_hash = e.prev_hash
    FROM tollgate.events e WHERE coalesce(e.run_id, '') = c.chain AND e.seq = c.seq;
  INSERT INTO tollgate.audit_key (fingerprint, relinked, legacy_broken_event)
  VALUES (tollgate.audit_hmac(convert_to('tollgate-audit-key-id', 'UTF8')), n, broken);
END
$$;
ALTER TABLE tollgate.events ENABLE TRIGGER events_append_only;

-- The first checkpoint names every existing run.
INSERT INTO tollgate.audit_pending (chain) SELECT chain FROM tollgate.event_chains WHERE chain <> '' AND seq > 0;
UPDATE tollgate.event_chains SET checkpoint_due = true WHERE chain <> '' AND seq > 0;

-- Down Migration
DROP TRIGGER approval_decision_link ON tollgate.events;
DROP FUNCTION tollgate.approval_decision_link();
DROP INDEX tollgate.approval_decisions_event_idx;
ALTER TABLE tollgate.approval_decisions DROP COLUMN event_id;
DROP FUNCTION tollgate.audit_checkpoint(integer);
CREATE OR REPLACE FUNCTION tollgate.events_chain_append() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER AS $$
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
ALTER TABLE tollgate.event_chains DROP COLUMN checkpoint_due, DROP COLUMN was_due;
DROP TABLE tollgate.audit_pending;
-- Back to the unkeyed formula; the links written under the key no longer verify until re-chained.
CREATE OR REPLACE FUNCTION tollgate.event_link_hash(
  prev bytea, id bigint, run_id text, seq bigint, type text, step_idx integer, actor jsonb,
  created_at timestamptz, payload_digest bytea
) RETURNS bytea LANGUAGE sql STABLE AS $$
  SELECT sha256(tollgate.event_link_message(prev, id, run_id, seq, type, step_idx, actor, created_at, payload_digest))
$$;
DROP FUNCTION tollgate.audit_hmac(bytea);
DROP TABLE tollgate.audit_key;
