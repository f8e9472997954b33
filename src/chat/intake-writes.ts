/**
 * The chat intake's grouped writes (src/db/group-commit.ts): each records a whole batch of
 * intents in ONE statement (hence one transaction and one WAL flush), with a per-item outcome.
 *
 * - `writeDeferredIntents`: intents whose outcome the ack does not need: a run start (its input
 *   checked and its run id given beforehand), an approval decision, a Retry or Cancel. The intent
 *   itself is made durable as a `chat-intent` job, with its delivery key, before the ack; the
 *   worker carries it out and explains a refusal through the outbox (jobs/chat-intent.ts).
 * - `writeRunStarts`: runs with their delivery key, `run.created` event, advance job and live
 *   message. An item whose key was already recorded (a platform's re-send) writes nothing. The
 *   worker uses it to carry out a deferred start.
 *
 * Two items with the same delivery key in one batch (a re-send that arrived while the first was
 * queued) are told apart here, before SQL: the first is written, the others are duplicates, as
 * they would be in separate transactions.
 */
import type { Queryable } from '../db/queryable.ts';
import { ADVANCE_TASK } from '../db/queries/runs.ts';
import type { PreparedRun } from '../runtime/runtime.ts';
import type { Where } from './outbox.ts';
import { newId } from '../common/ids.ts';
import { newRunTraceContext } from '../telemetry/tracing-spans.ts';

export interface KeyOf {
  platform: string;
  key: string;
  kind: string;
}

export interface RunStartWrite {
  run: PreparedRun;
  key?: KeyOf;
  /** Where the run's live message goes. */
  message?: Where | null;
}

export interface DeferredWrite {
  key?: KeyOf;
  /** The run this intent will start (its id is given before it exists), kept with the delivery key. */
  runId?: string;
  /** The job's payload: the intent, as jobs/chat-intent.ts reads it. */
  payload: unknown;
}

/** The task that carries out deferred intents (jobs/chat-intent.ts). */
export const INTENT_TASK = 'chat-intent';

/** Marks every item but the first of each delivery key as a duplicate (false); true: to be written. */
function firstOfEachKey(items: readonly { key?: KeyOf }[]): boolean[] {
  const seen = new Set<string>();
  return items.map((i) => {
    if (!i.key) return true;
    const k = `${i.key.platform}\u0000${i.key.key}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * Records the runs; true per item that was recorded, false for a delivery key seen before or a
 * run that already exists (a deferred start carried out again after a crash writes nothing twice).
 */
export async function writeRunStarts(q: Queryable, items: readonly RunStartWrite[]): Promise<boolean[]> {
  const first = firstOfEachKey(items);
  const rows = items.flatMap((it, i) =>
    first[i]
      ? [
          {
            i,
            run_id: it.run.id,
            workflow: it.run.workflow,
            version: it.run.version,
            input: it.run.input,
            requester: it.run.requester,
            origin: it.run.origin,
            key_platform: it.key?.platform ?? null,
            key: it.key?.key ?? null,
            key_kind: it.key?.kind ?? null,
            msg_id: it.message ? newId('msg') : null,
            msg_platform: it.message?.platform ?? null,
            tenant: it.message?.tenant ?? null,
            conversation: it.message?.conversation ?? null,
            thread: it.message?.thread ?? null,
            address: it.message?.address ?? null,
            trace_context: newRunTraceContext(it.run.workflow),
          },
        ]
      : [],
  );
  if (rows.length === 0) return items.map(() => false);
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
       INSERT INTO tollgate.events (run_id, type, actor, payload)
       SELECT id, 'run.created', requester, jsonb_build_object('workflow', workflow, 'version', workflow_version) FROM r),
     j AS (
       SELECT count(*) AS n FROM graphile_worker.add_jobs(
         (SELECT array_agg(ROW($2::text, json_build_object('runId', id), NULL, NULL, 25, 'advance:' || id, NULL, NULL)::graphile_worker.job_spec) FROM r))),
     m AS (
       INSERT INTO tollgate.chat_messages (id, platform, kind, run_id, tenant, conversation, thread, address)
       SELECT msg_id, msg_platform, 'run', run_id, tenant, conversation, thread, address FROM todo
       WHERE msg_id IS NOT NULL AND run_id IN (SELECT id FROM r)
       ON CONFLICT DO NOTHING)
     SELECT i FROM todo, j WHERE run_id IN (SELECT id FROM r)`,
    [JSON.stringify(rows), ADVANCE_TASK],
  );
  const recorded = new Set(written.map((r) => r.i));
  return items.map((_, i) => recorded.has(i));
}

/** Makes the intents durable as jobs; true per item recorded, false for a delivery key seen before. */
export async function writeDeferredIntents(q: Queryable, items: readonly DeferredWrite[]): Promise<boolean[]> {
  const first = firstOfEachKey(items);
  const rows = items.flatMap((it, i) =>
    first[i] ? [{ i, key_platform: it.key?.platform ?? null, key: it.key?.key ?? null, key_kind: it.key?.kind ?? null, run_id: it.runId ?? null, payload: it.payload }] : [],
  );
  if (rows.length === 0) return items.map(() => false);
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
  const recorded = new Set(written.map((r) => r.i));
  return items.map((_, i) => recorded.has(i));
}
