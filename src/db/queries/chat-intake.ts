/**
 * The SQL of the chat intake's grouped writes (src/chat/intake-writes.ts, src/db/group-commit.ts):
 * each records a whole batch of intents in ONE statement (hence one transaction and one WAL
 * flush), with their delivery keys, and returns which items it wrote (`i`, the item's index in
 * the batch). An item whose delivery key was claimed before (a platform's re-send) writes nothing.
 */
import type { Queryable } from '../queryable.ts';
import { INSERT_EVENTS } from './events.ts';
import { ADVANCE_TASK, newKeyedJobs } from './jobs.ts';

/** The task that carries out deferred intents (jobs/chat-intent.ts). */
export const INTENT_TASK = 'chat-intent';

/** One run to start, flattened for `jsonb_to_recordset`; a `msg_id` adds its live message. */
export interface RunStartRow {
  i: number;
  run_id: string;
  workflow: string;
  version: number;
  input: unknown;
  requester: unknown;
  origin: unknown;
  key_platform: string | null;
  key: string | null;
  key_kind: string | null;
  msg_id: string | null;
  msg_platform: string | null;
  tenant: string | null;
  conversation: string | null;
  thread: string | null;
  address: unknown;
  trace_context: string | null;
}

/** One intent to carry out after the ack: its `chat-intent` job's payload, with its delivery key. */
export interface DeferredIntentRow {
  i: number;
  key_platform: string | null;
  key: string | null;
  key_kind: string | null;
  run_id: string | null;
  payload: unknown;
}

/**
 * Inserts the runs with their delivery keys, `run.created` events, advance jobs and live
 * messages; returns the `i` of each run written (a claimed key or an existing run writes nothing).
 */
export async function insertRunStarts(q: Queryable, rows: readonly RunStartRow[]): Promise<number[]> {
  // The delivery key carries its run's id, so a key claimed here names the item that claimed it.
  // The message row needs no job of its own: the run.created event's trigger schedules the
  // delivery of every message of a chat run (migrations/functions/chat_delivery.sql).
  const { rows: written } = await q.query<{ i: number }>(
    `WITH items AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(i int, run_id text, workflow text, version int, input jsonb, requester jsonb, origin jsonb,
         key_platform text, key text, key_kind text, msg_id text, msg_platform text, tenant text, conversation text, thread text, address jsonb, trace_context text)),
     claimed AS (
       INSERT INTO tollgate.chat_delivery_keys (platform, key, kind, run_id)
       SELECT key_platform, key, key_kind, run_id FROM items WHERE key IS NOT NULL
       ON CONFLICT (platform, key) DO NOTHING RETURNING run_id),
     todo AS (SELECT * FROM items WHERE key IS NULL OR run_id IN (SELECT run_id FROM claimed)),
     r AS (
       INSERT INTO tollgate.runs (id, workflow, workflow_version, status, input, requester, origin, trace_context)
       SELECT run_id, workflow, version, 'queued', input, requester, origin, trace_context::jsonb FROM todo ORDER BY i
       ON CONFLICT (id) DO NOTHING RETURNING id, workflow, workflow_version, requester),
     e AS (
       ${INSERT_EVENTS}
       SELECT id, 'run.created', NULL, requester, jsonb_build_object('workflow', workflow, 'version', workflow_version) FROM r),
     advance AS (SELECT json_build_object('runId', id) AS payload, 'advance:' || id AS job_key, 25 AS max_attempts FROM r),
     ${newKeyedJobs('j', '$2', 'advance')},
     m AS (
       INSERT INTO tollgate.chat_messages (id, platform, kind, run_id, tenant, conversation, thread, address)
       SELECT msg_id, msg_platform, 'run', run_id, tenant, conversation, thread, address FROM todo
       WHERE msg_id IS NOT NULL AND run_id IN (SELECT id FROM r)
       ON CONFLICT DO NOTHING)
     SELECT i FROM todo, j WHERE run_id IN (SELECT id FROM r)`,
    [JSON.stringify(rows), ADVANCE_TASK],
  );
  return written.map((r) => r.i);
}

/** Adds a `chat-intent` job per intent whose delivery key is new (or that has none); returns the `i` of each. */
export async function insertDeferredIntents(q: Queryable, rows: readonly DeferredIntentRow[]): Promise<number[]> {
  const { rows: written } = await q.query<{ i: number }>(
    `WITH items AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(i int, key_platform text, key text, key_kind text, run_id text, payload jsonb)),
     claimed AS (
       INSERT INTO tollgate.chat_delivery_keys (platform, key, kind, run_id)
       SELECT key_platform, key, key_kind, run_id FROM items WHERE key IS NOT NULL
       ON CONFLICT (platform, key) DO NOTHING RETURNING platform, key),
     todo AS (SELECT * FROM items WHERE key IS NULL OR (key_platform, key) IN (SELECT platform, key FROM claimed)),
     j AS (
       SELECT count(*) AS n FROM graphile_worker.add_jobs(
         (SELECT array_agg(ROW($2::text, payload::json, NULL, NULL, 10, NULL, NULL, NULL)::graphile_worker.job_spec ORDER BY i) FROM todo)))
     SELECT todo.i FROM todo, j`,
    [JSON.stringify(rows), INTENT_TASK],
  );
  return written.map((r) => r.i);
}
