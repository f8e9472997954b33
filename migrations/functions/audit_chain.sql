-- The audit chain's SQL functions that migrations redefined: the one source of their current
-- bodies. Not a migration: src/db/migrate.ts applies this file after the migrations whenever its
-- text changed (its sha256 is kept in tollgate.function_files), in one transaction, so it must
-- stay idempotent (CREATE OR REPLACE only). Change a body here, never by pasting it into a new
-- migration. The migrations that defined these bodies before (000002, 000011, 000015) keep their
-- copies: a database migrated from an older version replays them on its way, and this file then
-- sets the current definition, the same on a fresh database and on an upgraded one.
--
-- The link (src/audit/verify.ts recomputes it in Node):
--   hash = HMAC-SHA256(K, prev_hash || header || payload_digest)
--        = sha256((K xor opad) || sha256((K xor ipad) || message)),
--   payload_digest = sha256(payload::text).
-- The pads come with each session's start-up options (tollgate.audit_ikey / tollgate.audit_okey,
-- src/audit/key.ts): never in a query text or a table.

-- A link, through the helpers (event_link_message, audit_hmac: migration 000011, defined once):
-- audit_checkpoint, the re-link of 000011 and tests call it. Body as of 000011.
CREATE OR REPLACE FUNCTION tollgate.event_link_hash(
  prev bytea, id bigint, run_id text, seq bigint, type text, step_idx integer, actor jsonb,
  created_at timestamptz, payload_digest bytea
) RETURNS bytea LANGUAGE sql STABLE AS $$
  SELECT tollgate.audit_hmac(tollgate.event_link_message(prev, id, run_id, seq, type, step_idx, actor, created_at, payload_digest))
$$;

-- The BEFORE INSERT trigger function of tollgate.events (trigger events_chain, migration 000002):
-- gives each event its place in its run's chain (or the global one) and its keyed link, and queues
-- the chain for the next checkpoint once per interval. SECURITY DEFINER: the application's role
-- appends events but has no right to write the chain heads or the queue itself. Every event pays
-- it, so the link is written out in one expression that reads the pads once, instead of the
-- nested helpers (payload_digest and audit_hmac are not inlined by the planner). Body as of 000015.
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
