-- Up Migration
-- A cheaper audit-chain trigger (issue 12 item 3). Every event of a run pays this trigger, and a
-- 5-step run appends 13 events, so its cost is a large share of what a run costs PostgreSQL.
-- The link is unchanged, byte for byte (src/audit/verify.ts recomputes it in Node):
--   hash = HMAC-SHA256(K, prev_hash || header || payload_digest)
--        = sha256((K xor opad) || sha256((K xor ipad) || message)), as in 000011,
--   payload_digest = sha256(payload::text), as in 000002.
-- What changes is how it is evaluated: the three nested helper functions (payload_digest and
-- audit_hmac are not inlined by the planner, and audit_hmac is plpgsql that reads and decodes
-- both pads on every call) become expressions of this one function, which reads the pads once.
-- The helpers stay: audit_checkpoint, the re-link of 000011 and tests call them.

-- (Replayed on the way up; the current body lives in migrations/functions/audit_chain.sql.)
CREATE OR REPLACE FUNCTION tollgate.events_chain_append() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  k text := coalesce(NEW.run_id, '');
  ik bytea := decode(nullif(current_setting('tollgate.audit_ikey', true), ''), 'hex');
  ok bytea := decode(nullif(current_setting('tollgate.audit_okey', true), ''), 'hex');
  queued boolean;
BEGIN
  IF ik IS NULL OR ok IS NULL THEN
    RAISE EXCEPTION 'tollgate.events: this session has no audit key, so it cannot append to the audit chain'
      USING HINT = 'Write events through Tollgate, whose connections carry the key (TOLLGATE_AUDIT_KEY or <dataDir>/audit.key); a link written without it could never be verified.',
            ERRCODE = 'TG002';
  END IF;
  NEW.payload := coalesce(NEW.payload, '{}'::jsonb);
  NEW.payload_digest := sha256(convert_to(NEW.payload::text, 'UTF8'));
  LOOP
    -- The message is tollgate.event_link_message's, written out (same bytes).
    UPDATE tollgate.event_chains c
       SET seq = c.seq + 1,
           prev_hash = c.last_hash,
           last_hash = sha256(ok || sha256(ik || (
               coalesce(c.last_hash, '\x'::bytea)
               || convert_to(jsonb_build_array(NEW.id, NEW.run_id, c.seq + 1, NEW.type, NEW.step_idx, NEW.actor,
                                               (extract(epoch FROM NEW.created_at) * 1000000)::bigint)::text, 'UTF8')
               || NEW.payload_digest))),
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

-- Down Migration
-- The trigger function of 000011.
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
