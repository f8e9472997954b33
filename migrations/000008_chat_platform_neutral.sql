-- Up Migration
-- One chat layer for every platform (src/chat). The Slack-only outbox, dedupe table and events
-- trigger become platform-neutral; every existing row and pending delivery is kept.
--
-- The live bodies of the chat SQL functions (the enqueue helper, the events trigger, the chat_runs
-- registration) are no longer written in migrations: they live once in
-- migrations/functions/chat_delivery.sql, which src/db/migrate.ts re-applies (CREATE OR REPLACE)
-- after every migration run. This migration only drops the Slack-named ones.

-- Delivery keys (what a platform sends again on a retry), now per platform.
ALTER TABLE tollgate.slack_deliveries RENAME TO chat_delivery_keys;
ALTER TABLE tollgate.chat_delivery_keys ADD COLUMN platform text NOT NULL DEFAULT 'slack';
ALTER TABLE tollgate.chat_delivery_keys ALTER COLUMN platform DROP DEFAULT;
ALTER TABLE tollgate.chat_delivery_keys DROP CONSTRAINT slack_deliveries_pkey;
ALTER TABLE tollgate.chat_delivery_keys ADD PRIMARY KEY (platform, key);
ALTER INDEX tollgate.slack_deliveries_received_at_idx RENAME TO chat_delivery_keys_received_at_idx;

-- The outbox in neutral terms: a conversation (Slack channel, Teams conversation), a thread, and
-- the platform's id for the posted message; `address` is what only that platform reads (Teams'
-- serviceUrl), stored as it came. A DM copy names the principal it goes to (`dm_to`) until the
-- platform opens the conversation. `visible_to`: a message only that principal sees (Slack's
-- ephemeral). `failures` counts consecutive failed attempts, for the outbox's own backoff.
ALTER TABLE tollgate.chat_messages RENAME COLUMN channel TO conversation;
ALTER TABLE tollgate.chat_messages RENAME COLUMN thread_ts TO thread;
ALTER TABLE tollgate.chat_messages RENAME COLUMN ts TO message_id;
ALTER TABLE tollgate.chat_messages ALTER COLUMN platform DROP DEFAULT;
ALTER TABLE tollgate.chat_messages ADD COLUMN tenant text;
ALTER TABLE tollgate.chat_messages ADD COLUMN address jsonb;
ALTER TABLE tollgate.chat_messages ADD COLUMN dm_to text;
ALTER TABLE tollgate.chat_messages ADD COLUMN visible_to text;
ALTER TABLE tollgate.chat_messages ADD COLUMN failures integer NOT NULL DEFAULT 0;
-- Slack DM copies named the Slack user; `copy` already holds the approver's principal.
UPDATE tollgate.chat_messages SET dm_to = copy WHERE dm_user IS NOT NULL;
ALTER TABLE tollgate.chat_messages DROP COLUMN dm_user;
UPDATE tollgate.chat_messages m SET tenant = r.origin->>'team'
  FROM tollgate.runs r WHERE r.id = m.run_id AND r.origin->>'platform' = 'slack';
-- A reply's body was Slack's {text, blocks}; it is now a platform's rendering {text, body}.
UPDATE tollgate.chat_messages SET body = jsonb_build_object('text', body->'text', 'body', jsonb_build_object('blocks', body->'blocks'))
  WHERE body IS NOT NULL;
DROP INDEX tollgate.chat_messages_run_copy_idx;
CREATE UNIQUE INDEX chat_messages_run_copy_idx ON tollgate.chat_messages (run_id, platform, conversation, coalesce(thread, '')) WHERE kind = 'run';

-- One origin shape (src/runtime/origin.ts): {platform:'cli'} or {platform, tenant, conversation, thread}.
UPDATE tollgate.runs SET origin = jsonb_build_object('platform', 'slack', 'tenant', origin->>'team', 'conversation', origin->'channel', 'thread', origin->'threadTs')
  WHERE origin->>'platform' = 'slack' AND origin ? 'team';
UPDATE tollgate.runs SET origin = '{"platform": "cli"}' WHERE origin->>'kind' = 'cli';

-- The Slack-named trigger and functions; their neutral successors are in functions/chat_delivery.sql.
DROP TRIGGER events_slack_delivery ON tollgate.events;
DROP FUNCTION tollgate.slack_enqueue_delivery();
DROP FUNCTION tollgate.slack_enqueue(json, text, timestamptz);

-- Pending jobs of the old Slack tasks move to the neutral ones (payloads are the same, except that
-- an App Home refresh now names its platform; job keys lose the `slack:` prefix for `chat:`).
-- Graphile Worker's schema is migrated after ours, so on a new database there is nothing to move.
-- Jobs locked right now by an older process are left to it.
DO $$
BEGIN
  IF to_regclass('graphile_worker._private_jobs') IS NULL THEN
    RETURN;
  END IF;
  PERFORM graphile_worker.add_job(
      CASE t.identifier WHEN 'slack-deliver' THEN 'chat-deliver' ELSE 'chat-approval-remind' END,
      CASE WHEN j.payload::jsonb ? 'home'
        THEN json_build_object('home', (j.payload::jsonb->'home') || '{"platform": "slack"}'::jsonb)
        ELSE j.payload::json END,
      run_at => j.run_at,
      job_key => 'chat:' || substr(j.key, length('slack:') + 1),
      job_key_mode => 'replace',
      max_attempts => j.max_attempts)
    FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
    WHERE t.identifier IN ('slack-deliver', 'slack-approval-remind') AND j.locked_at IS NULL AND j.attempts < j.max_attempts;
  DELETE FROM graphile_worker._private_jobs j USING graphile_worker._private_tasks t
    WHERE t.id = j.task_id AND t.identifier IN ('slack-deliver', 'slack-approval-remind') AND j.locked_at IS NULL;
END $$;

-- Down Migration
DO $$ BEGIN
  RAISE EXCEPTION '000008_chat_platform_neutral cannot be undone in place: restore the backup taken before the upgrade.';
END $$;
