/**
 * `tollgate audit verify`: proves the event log and the approval decisions were not changed
 * without the audit key. It walks every hash chain (one per run, one global), and checks:
 *
 * - each event's payload still has the digest it was chained with, and its link is the HMAC,
 *   under the audit key, of the previous link, its header and that digest. The HMAC is computed
 *   HERE, in Node, from the raw columns: nothing in the tollgate schema (functions, triggers) is
 *   trusted, since whoever owns the schema could replace them;
 * - chains have no gaps and end where their head row says;
 * - every chain named by a keyed checkpoint (`audit.checkpoint`, global chain) still has the event
 *   the checkpoint recorded, with that hash: a run deleted whole (events, chain row, run row) is
 *   caught once a checkpoint named it;
 * - a payload is NULL only on an event older than the latest cutoff retention recorded
 *   (`retention.started`, written before it purges, and `retention.purged`); a fresh payload set
 *   to NULL is reported, not taken for retention;
 * - every approval_decisions row matches the chained `approval.decided` event it is linked to
 *   (principal, decision, comment, via, on behalf of, time), and every such event still has its row.
 *
 * This module only reads, in one REPEATABLE READ snapshot.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { withTransaction } from '../db/transaction.ts';
import { TollgateError } from '../common/errors.ts';
import type { Queryable } from '../db/queryable.ts';
import {
  readAuditKeyRow,
  readChainEventsAfter,
  readChainHeads,
  readCheckpointEvents,
  readLatestRetentionCutoff,
  readLinkedDecisions,
  type ChainEventRow,
} from '../db/queries/audit.ts';
import { auditKeyOf, type AuditKey } from '../db/pool-key.ts';

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
  decisions: number;
  checkpoints: number;
  /** The first problem found (the one the CLI names first). */
  broken?: BrokenLink;
  /** Every problem found (at most one per chain, at most MAX_PROBLEMS). */
  problems: BrokenLink[];
  /** The newest checkpoint: write its hash down elsewhere to anchor the log outside the database. */
  newestCheckpoint?: { eventId: string; seq: number; at: string; hash: string };
  /** What the report cannot vouch for (not failures). */
  notes: string[];
}

interface Claim {
  seq: number;
  hash: string;
  checkpointId: string;
}

interface DecidedEvent {
  runId: string | null;
  stepIdx: number | null;
  principal: string | null;
  atUs: string;
  payload: Record<string, unknown> | null;
  taken: boolean;
}

const BATCH = 5000;
const MAX_PROBLEMS = 50;
/** A run older than this that no checkpoint names is worth a note (the task runs every minute). */
const UNANCHORED_AFTER_MS = 10 * 60_000;

/** A recorded value in a problem's text: a scalar as it is, anything else as JSON. */
function shown(v: unknown): string {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
}

function same(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return a === b;
  return a.equals(b);
}

/**
 * The bytes a link covers, as `tollgate.event_link_message` builds them: previous hash, the
 * header `jsonb_build_array(id, run_id, seq, type, step_idx, actor, epoch µs)::text`, payload
 * digest. jsonb writes arrays as `[a, b]` and escapes strings as JSON.stringify does.
 */
export function linkMessage(
  r: Pick<ChainEventRow, 'id' | 'run_id' | 'seq' | 'type' | 'step_idx' | 'actor' | 'at_us' | 'prev_hash' | 'payload_digest'>,
): Buffer {
  const header = `[${r.id}, ${r.run_id === null ? 'null' : JSON.stringify(r.run_id)}, ${r.seq}, ${JSON.stringify(r.type)}, ${r.step_idx ?? 'null'}, ${r.actor ?? 'null'}, ${r.at_us}]`;
  return Buffer.concat([r.prev_hash ?? Buffer.alloc(0), Buffer.from(header, 'utf8'), r.payload_digest ?? Buffer.alloc(0)]);
}

/** `platform:tenant:user` of an event's actor (its jsonb text), or null. */
export function principalOf(actor: string | null): string | null {
  if (!actor) return null;
  try {
    const a = JSON.parse(actor) as { platform?: unknown; tenant?: unknown; user?: unknown };
    return `${String(a.platform)}:${String(a.tenant)}:${String(a.user)}`;
  } catch {
    return null;
  }
}

/**
 * Verifies every chain and decision. Given a pool, it reads one snapshot (a REPEATABLE READ, READ
 * ONLY transaction): on a live system runs keep appending events, and reading the log and the
 * chain heads at different moments would report a sound chain as broken. The key defaults to the
 * one the pool was created with (src/db/connect.ts createPool).
 */
export async function verifyAuditChain(db: pg.Pool | Queryable, key: AuditKey | undefined = auditKeyOf(db)): Promise<VerifyReport> {
  if (!key) {
    throw new TollgateError(
      'TG_AUDIT_KEY_INVALID',
      'audit verify needs the audit key the chain is keyed with: set TOLLGATE_AUDIT_KEY (or run it where the data dir holds audit.key).',
    );
  }
  if (!('connect' in db) || typeof db.connect !== 'function' || 'release' in db) return verifyIn(db, key);
  return withTransaction(db, (q) => verifyIn(q, key), 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
}

async function verifyIn(q: Queryable, key: AuditKey): Promise<VerifyReport> {
  const report: VerifyReport = { ok: true, chains: 0, events: 0, purgedPayloads: 0, decisions: 0, checkpoints: 0, problems: [], notes: [] };
  const problem = (p: BrokenLink) => {
    if (report.problems.length < MAX_PROBLEMS) report.problems.push(p);
  };

  // What the global chain claims, read first. Its events are authenticated by the walk below (in
  // the same snapshot): a forged claim or cutoff breaks its own link there.
  const cutoff = await readLatestRetentionCutoff(q);
  const claims = await checkpointClaims(q, report);

  const walk = await walkChains(q, { key, cutoff, claims, report, problem });
  await checkHeads(q, walk.heads, walk.brokenChains, problem);
  checkClaimsKept(claims, walk, problem);
  await checkDecisions(q, walk.decided, report, problem);
  noteUnanchoredRuns(walk.firstEventAt, claims, report);
  await keyNotes(q, report);
  report.broken = report.problems[0];
  report.ok = report.problems.length === 0;
  return report;
}

/** What the walk of the chains hands the later checks. */
interface Walk {
  /** The intact `approval.decided` events, by id. */
  decided: Map<string, DecidedEvent>;
  /** Where each chain's intact part ends. */
  heads: Map<string, { seq: number; hash: Buffer | null }>;
  /** Chains already reported (one problem per chain). */
  brokenChains: Set<string>;
  firstEventAt: Map<string, Date>;
}

interface WalkContext {
  key: AuditKey;
  cutoff: Date | undefined;
  claims: Map<string, Claim>;
  report: VerifyReport;
  problem: (p: BrokenLink) => void;
}

/** The last intact event of the chain being walked. */
interface ChainPosition {
  chain: string;
  seq: number;
  hash: Buffer | null;
}

/** Walks every event of every chain, in batches, checking each against the one before it. */
async function walkChains(q: Queryable, ctx: WalkContext): Promise<Walk> {
  const walk: Walk = { decided: new Map(), heads: new Map(), brokenChains: new Set(), firstEventAt: new Map() };
  const { report } = ctx;
  let after: [string, number] = ['', -1];
  let current: ChainPosition | undefined;
  const endChain = () => {
    if (current) walk.heads.set(current.chain, { seq: current.seq, hash: current.hash });
  };

  for (;;) {
    const rows = await readChainEventsAfter(q, after, BATCH);
    for (const r of rows) {
      report.events++;
      if (r.payload === null) report.purgedPayloads++;
      if (!current || current.chain !== r.chain) {
        endChain();
        report.chains++;
        current = { chain: r.chain, seq: 0, hash: null };
        walk.firstEventAt.set(r.chain, r.created_at);
      }
      if (walk.brokenChains.has(r.chain)) continue; // one problem per chain: what follows a break is noise
      const reason = whyBroken(r, current, ctx);
      if (reason !== undefined) {
        walk.brokenChains.add(r.chain);
        ctx.problem({ eventId: r.id, runId: r.run_id, seq: r.seq === null ? null : Number(r.seq), reason });
        continue;
      }
      if (r.type === 'approval.decided') walk.decided.set(r.id, decidedEvent(r));
      current = { chain: r.chain, seq: Number(r.seq), hash: r.hash };
    }
    if (rows.length < BATCH) break;
    const last = rows[rows.length - 1] as ChainEventRow;
    after = [last.chain, Number(last.seq ?? -1)];
  }
  endChain();
  return walk;
}

/** Why the event breaks its chain, or undefined when it is intact and follows `current`. */
function whyBroken(r: ChainEventRow, current: ChainPosition, ctx: WalkContext): string | undefined {
  if (r.seq === null) return 'the event has no place in a chain (it was inserted with the chain trigger disabled)';
  const seq = Number(r.seq);
  if (seq !== current.seq + 1) return `event(s) missing before it: the chain goes from #${current.seq} to #${seq}`;
  if (!same(r.prev_hash, current.hash))
    return `it does not follow the previous event of its chain (#${current.seq}): an event was removed, replaced or reordered`;
  if (r.payload !== null && (r.payload_digest === null || !createHash('sha256').update(r.payload, 'utf8').digest().equals(r.payload_digest))) {
    return "its payload was edited: the payload's digest no longer matches the chained one";
  }
  if (r.hash === null || !ctx.key.hmac(linkMessage(r)).equals(r.hash)) {
    return 'it was edited, or written without the audit key: its hash no longer matches its type, actor, time, place and payload digest under the audit key (HMAC-SHA256)';
  }
  if (r.payload === null && r.type === 'audit.checkpoint')
    return "a checkpoint's payload was removed: checkpoints hold no personal data and retention keeps them";
  const { cutoff } = ctx;
  if (r.payload === null && (cutoff === undefined || r.created_at >= cutoff)) {
    return (
      `its payload was removed, but it is newer than any retention purge on record (` +
      (cutoff ? `the latest purged only what was older than ${cutoff.toISOString()}` : 'retention has never purged') +
      `): not retention's doing`
    );
  }
  const claim = ctx.claims.get(r.chain);
  if (claim && claim.seq === seq && claim.hash !== r.hash.toString('hex'))
    return `it is not the event checkpoint event ${claim.checkpointId} recorded at this place`;
  return undefined;
}

function decidedEvent(r: ChainEventRow): DecidedEvent {
  return {
    runId: r.run_id,
    stepIdx: r.step_idx,
    principal: principalOf(r.actor),
    atUs: r.at_us,
    payload: r.payload === null ? null : (JSON.parse(r.payload) as Record<string, unknown>),
    taken: false,
  };
}

/** Every chain a checkpoint named still reaches the event it recorded (not deleted whole, not cut short). */
function checkClaimsKept(claims: Map<string, Claim>, walk: Walk, problem: (p: BrokenLink) => void): void {
  for (const [chain, claim] of claims) {
    if (walk.brokenChains.has(chain)) continue;
    const seen = walk.heads.get(chain);
    if (!seen) {
      problem({
        eventId: null,
        runId: chain,
        seq: claim.seq,
        reason: `run ${chain} was deleted: checkpoint event ${claim.checkpointId} recorded its event #${claim.seq}, and the log has no event of it left`,
      });
    } else if (seen.seq < claim.seq) {
      problem({
        eventId: null,
        runId: chain,
        seq: claim.seq,
        reason: `the chain's newest event(s) were removed: checkpoint event ${claim.checkpointId} recorded event #${claim.seq}, but the log ends at #${seen.seq}`,
      });
    }
  }
}

function noteUnanchoredRuns(firstEventAt: Map<string, Date>, claims: Map<string, Claim>, report: VerifyReport): void {
  const now = Date.now();
  const unanchored = [...firstEventAt].filter(([chain, at]) => chain !== '' && !claims.has(chain) && now - at.getTime() > UNANCHORED_AFTER_MS).length;
  if (unanchored > 0) {
    report.notes.push(
      `${unanchored} run${unanchored === 1 ? ' is' : 's are'} older than ${UNANCHORED_AFTER_MS / 60_000} minutes but in no checkpoint yet, so deleting ${unanchored === 1 ? 'it' : 'them'} whole would go unnoticed: ` +
        'is a worker (the audit-checkpoint task) running? `tollgate audit checkpoint` writes one now.',
    );
  }
}

/** The newest claim each checkpoint makes per chain (later checkpoints name later events). */
async function checkpointClaims(q: Queryable, report: VerifyReport): Promise<Map<string, Claim>> {
  const claims = new Map<string, Claim>();
  for (const c of await readCheckpointEvents(q)) {
    report.checkpoints++;
    report.newestCheckpoint = { eventId: c.id, seq: Number(c.seq), at: c.created_at.toISOString(), hash: c.hash?.toString('hex') ?? '' };
    const chains = c.payload?.chains;
    if (!Array.isArray(chains)) continue; // a removed payload is reported by the walk
    for (const entry of chains) {
      const [chain, seq, hash] = entry as [string, number, string];
      const prior = claims.get(chain);
      if (!prior || prior.seq <= seq) claims.set(chain, { seq: Number(seq), hash, checkpointId: c.id });
    }
  }
  return claims;
}

async function checkHeads(
  q: Queryable,
  heads: Map<string, { seq: number; hash: Buffer | null }>,
  brokenChains: Set<string>,
  problem: (p: BrokenLink) => void,
): Promise<void> {
  for (const c of await readChainHeads(q)) {
    const seen = heads.get(c.chain);
    const seq = Number(c.seq);
    if (seq === 0 || brokenChains.has(c.chain)) continue;
    if (!seen || seen.seq !== seq || !same(seen.hash, c.last_hash)) {
      brokenChains.add(c.chain);
      problem({
        eventId: c.last_event_id,
        runId: c.chain === '' ? null : c.chain,
        seq,
        reason: `the chain's newest event(s) are missing: its head is #${seq} but the log ends at #${seen?.seq ?? 0}`,
      });
    }
  }
}

/** Every decision row against the chained event it is linked to, and every such event against its row. */
async function checkDecisions(q: Queryable, decided: Map<string, DecidedEvent>, report: VerifyReport, problem: (p: BrokenLink) => void): Promise<void> {
  for (const d of await readLinkedDecisions(q)) {
    report.decisions++;
    const who = `the decision of ${d.principal} on ${d.approval_id}`;
    const say = (reason: string, eventId: string | null = d.event_id) => problem({ eventId, runId: d.run_id, seq: null, reason });
    const e = d.event_id === null ? undefined : decided.get(d.event_id);
    if (!e) {
      say(
        d.event_id === null
          ? `${who} has no chained event: it was inserted outside Tollgate`
          : `${who} names event ${d.event_id}, which is not an intact approval.decided event of the log`,
      );
      continue;
    }
    e.taken = true;
    const diffs: string[] = [];
    if (e.principal !== d.principal) diffs.push(`principal (the event says ${e.principal})`);
    if (e.runId !== d.run_id || e.stepIdx !== d.step_idx) diffs.push('approval (the event is of another run or step)');
    if (e.atUs !== d.at_us) diffs.push('decided_at');
    if (e.payload) {
      const p = e.payload;
      if (p.approvalId !== d.approval_id) diffs.push(`approval (the event says ${String(p.approvalId)})`);
      if (p.decision !== d.decision) diffs.push(`decision (the event says ${String(p.decision)})`);
      if ((p.comment ?? null) !== d.comment) diffs.push('comment');
      if ((p.via ?? null) !== d.via) diffs.push(`via (the event says ${shown(p.via ?? 'nothing')})`);
      if ((p.onBehalfOf ?? null) !== d.on_behalf_of) diffs.push(`on_behalf_of (the event says ${shown(p.onBehalfOf ?? 'nothing')})`);
    }
    if (diffs.length > 0) say(`${who} was edited: its ${diffs.join(', ')} no longer match${diffs.length === 1 ? 'es' : ''} the chained event ${d.event_id}`);
  }
  for (const [id, e] of decided) {
    if (e.taken) continue;
    const what = e.payload ? `${String(e.payload.decision)} of ${e.principal} on ${String(e.payload.approvalId)}` : `of ${e.principal}`;
    problem({ eventId: id, runId: e.runId, seq: null, reason: `the decision (${what}) recorded by this event was deleted from approval_decisions` });
  }
}

async function keyNotes(q: Queryable, report: VerifyReport): Promise<void> {
  const k = await readAuditKeyRow(q);
  if (!k) {
    report.problems.unshift({ eventId: null, runId: null, seq: null, reason: "the audit key's fingerprint row (tollgate.audit_key) was removed" });
    return;
  }
  if (Number(k.relinked) > 0) {
    report.notes.push(
      `The audit key was introduced at ${k.introduced_at.toISOString()}; the ${k.relinked} events before it were re-linked under it, so they are proven unchanged since then, not before.`,
    );
  }
  if (k.legacy_broken_event) {
    report.notes.push(`Before the key was introduced, event ${k.legacy_broken_event} already did not verify under the old unkeyed chain.`);
  }
}

export function formatVerifyReport(r: VerifyReport): string {
  const n = (k: number, word: string) => `${k} ${word}${k === 1 ? '' : 's'}`;
  const lines: string[] = [];
  if (r.ok) {
    lines.push(
      `Audit chain verified: ${n(r.events, 'event')} in ${n(r.chains, 'chain')}, every link intact, ${n(r.decisions, 'decision')} match their events` +
        (r.purgedPayloads ? ` (${r.purgedPayloads} payloads purged by retention; their digests still verify).` : '.'),
    );
  } else {
    for (const b of r.problems) {
      lines.push(
        b.eventId === null && b.seq !== null && b.runId
          ? `Audit chain BROKEN (run ${b.runId}, #${b.seq}): ${b.reason}.`
          : `Audit chain BROKEN at event ${b.eventId ?? '?'} (${b.runId ? `run ${b.runId}` : 'global chain'}${b.seq === null ? '' : `, #${b.seq}`}): ${b.reason}.`,
      );
    }
  }
  if (r.newestCheckpoint) {
    const c = r.newestCheckpoint;
    lines.push(`Newest checkpoint: event ${c.eventId} (#${c.seq}) at ${c.at}, hash ${c.hash}. Keep it outside the database to detect a later truncation.`);
  }
  for (const note of r.notes) lines.push(`Note: ${note}`);
  return lines.join('\n');
}
