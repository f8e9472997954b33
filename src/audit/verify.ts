/**
 * `tollgate audit verify`: walks every hash chain of the event log (one per run, one global for
 * events without a run) and names the first broken link. An event is intact when its payload
 * still has the digest it was chained with (unless retention dropped the payload), its hash
 * still matches its contents and the previous event's hash, and its chain has no gaps; the
 * chain's head must point at its last event, so removing the newest events is caught too.
 *
 * The hash is recomputed by the same SQL function the insert trigger uses
 * (`tollgate.event_link_hash`), so both sides agree byte for byte. This module only reads.
 */
import type pg from 'pg';
import type { Queryable } from '../runtime/journal.ts';

export interface BrokenLink {
  eventId: string | null;
  runId: string | null;
  seq: number | null;
  reason: string;
}

export interface VerifyReport {
  ok: boolean;
  chains: number;
  events: number;
  purgedPayloads: number;
  broken?: BrokenLink;
}

interface Row {
  id: string;
  run_id: string | null;
  chain: string;
  seq: string | null;
  prev_hash: Buffer | null;
  hash: Buffer | null;
  purged: boolean;
  digest_ok: boolean;
  link_ok: boolean;
}

const BATCH = 5000;

function same(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return a === b;
  return a.equals(b);
}

/**
 * Verifies every chain. Given a pool, it reads one snapshot (a REPEATABLE READ, READ ONLY
 * transaction): on a live system runs keep appending events, and reading the log and the chain
 * heads at different moments would report a sound chain as broken.
 */
export async function verifyAuditChain(db: pg.Pool | Queryable): Promise<VerifyReport> {
  if (!('connect' in db) || typeof db.connect !== 'function' || 'release' in db) return verifyIn(db);
  const client = await (db as pg.Pool).connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const report = await verifyIn(client);
    await client.query('COMMIT');
    return report;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    client.release();
  }
}

async function verifyIn(q: Queryable): Promise<VerifyReport> {
  let events = 0;
  let purgedPayloads = 0;
  let chains = 0;
  const heads = new Map<string, { seq: number; hash: Buffer | null }>();
  let after: [string, number] = ['', -1];
  let current: { chain: string; seq: number; hash: Buffer | null } | undefined;
  const fail = (r: Row, reason: string): VerifyReport => ({
    ok: false,
    chains,
    events,
    purgedPayloads,
    broken: { eventId: r.id, runId: r.run_id, seq: r.seq === null ? null : Number(r.seq), reason },
  });

  for (;;) {
    const { rows } = await q.query<Row>(
      `SELECT id::text, run_id, coalesce(run_id, '') AS chain, seq::text, prev_hash, hash, payload IS NULL AS purged,
              (payload IS NULL OR tollgate.payload_digest(payload) = payload_digest) AS digest_ok,
              coalesce(tollgate.event_link_hash(prev_hash, id, run_id, seq, type, step_idx, actor, created_at, payload_digest) = hash, false) AS link_ok
       FROM tollgate.events
       WHERE (coalesce(run_id, ''), coalesce(seq, -1)) > ($1, $2)
       ORDER BY coalesce(run_id, ''), coalesce(seq, -1)
       LIMIT ${BATCH}`,
      after,
    );
    for (const r of rows) {
      events++;
      if (r.purged) purgedPayloads++;
      if (r.seq === null) return fail(r, 'the event has no place in a chain (it was inserted with the chain trigger disabled)');
      const seq = Number(r.seq);
      if (!current || current.chain !== r.chain) {
        if (current) heads.set(current.chain, { seq: current.seq, hash: current.hash });
        chains++;
        current = { chain: r.chain, seq: 0, hash: null };
      }
      if (seq !== current.seq + 1) {
        return fail(r, `event(s) missing before it: the chain goes from #${current.seq} to #${seq}`);
      }
      if (!same(r.prev_hash, current.hash)) {
        return fail(r, `it does not follow the previous event of its chain (#${current.seq}): an event was removed, replaced or reordered`);
      }
      if (!r.digest_ok) return fail(r, "its payload was edited: the payload's digest no longer matches the chained one");
      if (!r.link_ok) return fail(r, 'it was edited: its hash no longer matches its type, actor, time or place');
      current = { chain: r.chain, seq, hash: r.hash };
    }
    if (rows.length < BATCH) break;
    const last = rows[rows.length - 1] as Row;
    after = [last.chain, Number(last.seq ?? -1)];
  }
  if (current) heads.set(current.chain, { seq: current.seq, hash: current.hash });

  const { rows: chainRows } = await q.query<{ chain: string; seq: string; last_hash: Buffer | null; last_event_id: string | null }>(
    'SELECT chain, seq::text, last_hash, last_event_id::text FROM tollgate.event_chains ORDER BY chain',
  );
  for (const c of chainRows) {
    const seen = heads.get(c.chain);
    const seq = Number(c.seq);
    if (seq === 0) continue;
    if (!seen || seen.seq !== seq || !same(seen.hash, c.last_hash)) {
      return {
        ok: false,
        chains,
        events,
        purgedPayloads,
        broken: {
          eventId: c.last_event_id,
          runId: c.chain === '' ? null : c.chain,
          seq,
          reason: `the chain's newest event(s) are missing: its head is #${seq} but the log ends at #${seen?.seq ?? 0}`,
        },
      };
    }
  }
  return { ok: true, chains, events, purgedPayloads };
}

export function formatVerifyReport(r: VerifyReport): string {
  if (r.ok) {
    const n = (k: number, word: string) => `${k} ${word}${k === 1 ? '' : 's'}`;
    return `Audit chain verified: ${n(r.events, 'event')} in ${n(r.chains, 'chain')}, every link intact` +
      (r.purgedPayloads ? ` (${r.purgedPayloads} payloads purged by retention; their digests still verify).` : '.');
  }
  const b = r.broken as BrokenLink;
  return `Audit chain BROKEN at event ${b.eventId ?? '?'} (${b.runId ? `run ${b.runId}` : 'global chain'}, #${b.seq ?? '?'}): ${b.reason}.`;
}
