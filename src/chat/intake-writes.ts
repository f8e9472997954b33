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
import { insertDeferredIntents, insertRunStarts, type DeferredIntentRow, type RunStartRow } from '../db/queries/chat-intake.ts';
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
  const rows = items.flatMap((it, i): RunStartRow[] =>
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
  const recorded = new Set(await insertRunStarts(q, rows));
  return items.map((_, i) => recorded.has(i));
}

/** Makes the intents durable as jobs; true per item recorded, false for a delivery key seen before. */
export async function writeDeferredIntents(q: Queryable, items: readonly DeferredWrite[]): Promise<boolean[]> {
  const first = firstOfEachKey(items);
  const rows = items.flatMap((it, i): DeferredIntentRow[] =>
    first[i]
      ? [{ i, key_platform: it.key?.platform ?? null, key: it.key?.key ?? null, key_kind: it.key?.kind ?? null, run_id: it.runId ?? null, payload: it.payload }]
      : [],
  );
  if (rows.length === 0) return items.map(() => false);
  const recorded = new Set(await insertDeferredIntents(q, rows));
  return items.map((_, i) => recorded.has(i));
}
