-- Up Migration
-- Retention is on by default (src/audit/retention.ts): every day it purges the personal data of
-- runs that finished before the cutoff. These partial indexes hold only what the purge still has
-- to do, so each purge reads what it changes and never walks the whole of a large table. Their
-- predicates are false for everything on the hot insert path (events of runs, live runs), so
-- running a workflow maintains none of them except at a run's finish.

-- Finished runs not purged yet, oldest first (the purge takes them in batches by finished_at).
CREATE INDEX runs_unpurged_finished_idx ON tollgate.runs (finished_at)
  WHERE journal_purged_at IS NULL
    AND status IN ('succeeded', 'failed', 'cancelled', 'compensated', 'compensation_failed');

-- Events of the global chain (no run) whose payload is still there. Events of runs are purged
-- through their run (events_run_idx). The purge's own records are kept: they carry no personal
-- data, and `audit verify` reads the cutoff of the newest `retention.purged`.
CREATE INDEX events_global_unpurged_idx ON tollgate.events (created_at)
  WHERE run_id IS NULL AND payload IS NOT NULL AND type NOT IN ('retention.purged', 'retention.completed');

-- The purge records, the newest of which bounds which payloads may be missing.
CREATE INDEX events_retention_purged_idx ON tollgate.events (id) WHERE type = 'retention.purged';

-- Fixed replies (help, status, lists) belong to no run: they are deleted by age.
CREATE INDEX chat_messages_reply_created_idx ON tollgate.chat_messages (created_at) WHERE kind = 'reply';

-- Down Migration
DROP INDEX tollgate.chat_messages_reply_created_idx;
DROP INDEX tollgate.events_retention_purged_idx;
DROP INDEX tollgate.events_global_unpurged_idx;
DROP INDEX tollgate.runs_unpurged_finished_idx;
