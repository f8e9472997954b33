/**
 * `tollgate audit verify --bundle <file>`: checks an evidence bundle (bundle-format.ts) offline,
 * with no database. It trusts nothing in the file:
 *
 * - the chain segment: every payload against its digest, every event against the one before it
 *   (seq, previous hash), the segment's end against the chain head, and with the audit key every
 *   link (HMAC-SHA256, recomputed here as `audit verify` does), the checkpoint and the retention
 *   record;
 * - every section derived from the database against the chained events that recorded the same
 *   facts: the run's workflow, version, requester and outcome; each step's name, attempts, error
 *   and outcome; each approval's parameters against their hash and that hash against its
 *   `approval.*` events, its policy, status, escalations and decisions (principal, decision,
 *   comment, via, OS user, time) against their `approval.decided` events; model calls against
 *   their `model.called` events; tool calls against their steps;
 * - with the audit key, every field's seal (bundle-seal.ts), which covers what no event records.
 *
 * Each problem names the bundle field it found changed. Without the key, the report says which
 * checks could not be done: digests and hashes can be recomputed by anyone, so a bundle that
 * passes only those is self-consistent, not proven to be what Tollgate recorded.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { canonicalJson, paramsHash } from '../approvals/hash.ts';
import { describeApprovers, describeQuorum } from '../approvals/describe.ts';
import { TollgateError } from '../common/errors.ts';
import type { AuditKey } from '../db/pool-key.ts';
import { linkMessage, principalOf } from './verify.ts';
import { checkSeals } from './bundle-seal.ts';
import {
  calledToolVersion,
  EVIDENCE_FORMAT,
  isoMicros,
  modelCallOf,
  type BundleApproval,
  type BundleEvent,
  type BundleStep,
  type EvidenceBundle,
} from './bundle-format.ts';

export interface BundleProblem {
  /** The bundle field found wrong, as a path: `approvals[0].decisions[0].principal`. */
  field: string;
  /** The whole sentence, starting with the field. */
  message: string;
}

export interface BundleReport {
  ok: boolean;
  /** The links and seals were checked with the audit key. */
  keyed: boolean;
  runId: string;
  events: number;
  purgedPayloads: number;
  steps: number;
  approvals: number;
  decisions: number;
  toolCalls: number;
  modelCalls: number;
  sealsChecked: number;
  head: { seq: number; hash: string | null } | null;
  checkpoint: { seq: number; at: string; hash: string } | null;
  problems: BundleProblem[];
  /** What could not be checked (without the key). */
  notChecked: string[];
  notes: string[];
}

const TERMINAL = ['succeeded', 'failed', 'cancelled', 'compensated', 'compensation_failed'];
/** The event that ends an approval in each status. */
const OUTCOME_EVENT: Record<string, string[]> = {
  approved: ['approval.approved', 'approval.auto_approved'],
  rejected: ['approval.rejected'],
  expired: ['approval.expired'],
  voided: ['approval.voided'],
  cancelled: ['approval.cancelled'],
  pending: [],
};
const OUTCOME_TYPES = new Set(Object.values(OUTCOME_EVENT).flat());

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
const list = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);
const same = (a: unknown, b: unknown) => canonicalJson(a ?? null) === canonicalJson(b ?? null);
const show = (v: unknown) => (v === undefined || v === null ? 'nothing' : typeof v === 'string' ? `"${v}"` : canonicalJson(v));
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** Verifies a parsed bundle. Never throws on a damaged bundle: damage is reported as problems. */
export function verifyEvidenceBundle(input: unknown, opts: { auditKey?: AuditKey } = {}): BundleReport {
  const b = asBundle(input);
  const problems: BundleProblem[] = [];
  // One problem per field, the first found: the fuller comparisons come first.
  const problem = (field: string, message: string) => {
    if (!problems.some((p) => p.field === field)) problems.push({ field, message: `${field} ${message}` });
  };
  const chain = isObject(b.chain) ? b.chain : ({} as EvidenceBundle['chain']);
  const events = list<BundleEvent>(chain.events);
  const run = isObject(b.run) ? b.run : ({} as EvidenceBundle['run']);
  const runId = String(run.id ?? '');
  const report: BundleReport = {
    ok: true,
    keyed: false,
    runId,
    events: events.length,
    purgedPayloads: events.filter((e) => isObject(e) && e.payload === null).length,
    steps: list(b.steps).length,
    approvals: list(b.approvals).length,
    decisions: list<BundleApproval>(b.approvals).reduce((n, a) => n + list(isObject(a) ? a.decisions : []).length, 0),
    toolCalls: list(b.toolCalls).length,
    modelCalls: list(b.modelCalls).length,
    sealsChecked: 0,
    head: isObject(chain.head) ? chain.head : null,
    checkpoint: null,
    problems,
    notChecked: [],
    notes: [],
  };

  let key = opts.auditKey;
  if (key && typeof chain.keyFingerprint === 'string' && chain.keyFingerprint !== key.fingerprint.toString('hex')) {
    problem(
      'chain.keyFingerprint',
      `names another audit key (${chain.keyFingerprint.slice(0, 16)}) than the one given (${key.fingerprint.toString('hex').slice(0, 16)}, from ${key.source}): ` +
        'verify with the key of the deployment that exported it. Its links and seals were not checked.',
    );
    key = undefined;
  }
  report.keyed = key !== undefined;

  // Each section is checked on its own: a malformed one is reported and the others still are.
  const section = (name: string, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      problem(name, `is malformed: ${(e as Error).message}`);
    }
  };
  const payloads = new Map<number, Json | null>();
  section('chain', () => checkChain(b, runId, events, key, problem, report, payloads));
  const ctx = new Ctx(events, payloads);
  section('run', () => checkRun(b, ctx, problem));
  section('approvals', () => checkApprovals(b, ctx, problem, report));
  section('steps', () => checkSteps(b, ctx, problem));
  section('toolCalls', () => checkToolCalls(b, ctx, problem));
  section('modelCalls', () => checkModelCalls(b, ctx, problem));

  if (key) {
    section('seals', () => {
      if (!isObject(b.seals)) {
        problem('seals', 'are missing: every bundle Tollgate exports carries them, so the fields cannot be proven unchanged');
        return;
      }
      const { checked, failures } = checkSeals(b, key);
      report.sealsChecked = checked;
      for (const f of failures) {
        const name = f.field === '' ? "The bundle's top-level field list" : f.field;
        if (f.kind === 'changed') problem(name, 'was changed after export: its seal does not verify under the audit key');
        else if (f.kind === 'added') problem(name, 'was added after export: it has no seal');
        else problem(name, 'was removed after export: its seal is left without it');
      }
    });
  } else {
    report.notChecked.push(
      `the links of ${events.length} event${events.length === 1 ? '' : 's'} (HMAC-SHA256 under the audit key): without them the events could have been rewritten with digests recomputed to match`,
      `the seals of the bundle's fields, among them what no event records: the run's input and output, steps' inputs and outputs, approvals' summaries and rationales (their parameters are checked against their hash only)`,
      'the links of the checkpoint and the retention record',
    );
  }
  if (!isObject(chain.checkpoint)) {
    report.notes.push(
      'No checkpoint named this run when it was exported, so deleting the run whole from the database would not have been caught by one (the worker writes one every minute).',
    );
  }
  if (report.purgedPayloads > 0) {
    report.notes.push(
      `${report.purgedPayloads} event payload${report.purgedPayloads === 1 ? ' was' : 's were'} purged by retention: their digests still link, but what they recorded can no longer be compared.`,
    );
  }
  report.ok = problems.length === 0;
  return report;
}

/** The input as a bundle to check, or TG_USAGE when it does not even claim to be one. */
function asBundle(input: unknown, file?: string): EvidenceBundle {
  if (isObject(input) && input.format === EVIDENCE_FORMAT) return input as unknown as EvidenceBundle;
  throw new TollgateError(
    'TG_USAGE',
    `${file ? `${file} is` : 'This is'} not an evidence bundle: its "format" is ${show(isObject(input) ? input.format : undefined)}, not "${EVIDENCE_FORMAT}". Give a file written by \`tollgate runs export\`.`,
  );
}

/** Chained events by seq and type, with their parsed payloads. */
class Ctx {
  constructor(
    readonly events: BundleEvent[],
    readonly payloads: Map<number, Json | null>,
  ) {}
  at(seq: unknown): BundleEvent | undefined {
    return typeof seq === 'number' ? this.events.find((e) => e.seq === seq) : undefined;
  }
  payload(e: BundleEvent): Json | null {
    return this.payloads.get(e.seq) ?? null;
  }
  ofType(...types: string[]): BundleEvent[] {
    return this.events.filter((e) => types.includes(e.type));
  }
  /** Events whose payload names this approval. */
  ofApproval(id: string, ...types: string[]): BundleEvent[] {
    return this.ofType(...types).filter((e) => this.payload(e)?.approvalId === id);
  }
}

type Problem = (field: string, message: string) => void;
const where = (e: BundleEvent) => `its chained ${e.type} event (seq ${e.seq})`;

function checkChain(
  b: EvidenceBundle,
  runId: string,
  events: BundleEvent[],
  key: AuditKey | undefined,
  problem: Problem,
  report: BundleReport,
  payloads: Map<number, Json | null>,
): void {
  const chain = b.chain;
  if (chain.runId !== runId) problem('run.id', `is ${show(runId)}, but the chain segment is run ${show(chain.runId)}'s`);
  const retention = isObject(chain.retention) ? chain.retention : null;
  let cutoff: number | undefined;
  if (retention) {
    const ok = checkEvent(retention.event, null, 'chain.retention.event', key, problem);
    const p = ok && retention.event.payload !== null ? (JSON.parse(retention.event.payload) as Json) : null;
    if (!p || typeof p.cutoff !== 'string' || Date.parse(p.cutoff) !== Date.parse(retention.cutoff)) {
      problem('chain.retention.cutoff', `is ${show(retention.cutoff)}, not the cutoff its chained retention record holds`);
    } else cutoff = Date.parse(p.cutoff);
  }

  let broken = false;
  events.forEach((e, i) => {
    const label = `chain.events[${i}]`;
    if (!isObject(e)) {
      problem(label, 'is not an event');
      broken = true;
      return;
    }
    if (broken) return; // what follows a break in the chain is noise
    const prev = i === 0 ? null : events[i - 1];
    if (e.seq !== i + 1) {
      problem(`${label}.seq`, `is ${show(e.seq)} where event #${i + 1} belongs: an event was removed, added or reordered`);
      broken = true;
      return;
    }
    if ((e.prevHash ?? null) !== (prev?.hash ?? null)) {
      problem(`${label}.prevHash`, `(seq ${e.seq}, ${e.type}) does not follow the event before it: an event was removed, replaced or reordered`);
      broken = true;
      return;
    }
    if (!checkEvent(e, runId, label, key, problem)) {
      broken = true;
      return;
    }
    if (e.payload === null) {
      if (cutoff === undefined || Date.parse(e.at) >= cutoff) {
        problem(
          `${label}.payload`,
          `(seq ${e.seq}, ${e.type}) was removed, but no retention record in the bundle covers an event this recent: not retention's doing`,
        );
      }
      payloads.set(e.seq, null);
    } else {
      const parsed = JSON.parse(e.payload) as unknown;
      payloads.set(e.seq, isObject(parsed) ? parsed : {});
    }
  });

  const last = events[events.length - 1];
  const head = chain.head;
  if (!broken && (!isObject(head) || head.seq !== (last?.seq ?? 0) || (head.hash ?? null) !== (last?.hash ?? null))) {
    problem(
      'chain.head',
      `is #${show(isObject(head) ? head.seq : undefined)}, but the segment ends at #${last?.seq ?? 0}: events are missing from the bundle, or the head was changed`,
    );
  }

  const cp = isObject(chain.checkpoint) ? chain.checkpoint : null;
  if (cp && checkEvent(cp.event, null, 'chain.checkpoint.event', key, problem)) {
    const p = cp.event.payload === null ? null : (JSON.parse(cp.event.payload) as Json);
    const recorded = list<unknown[]>(p?.chains).find((c) => Array.isArray(c) && c[0] === runId);
    if (!recorded || Number(recorded[1]) !== cp.claim?.seq || String(recorded[2]) !== cp.claim?.hash) {
      problem('chain.checkpoint.claim', `is not what its chained checkpoint event (global seq ${cp.event.seq}) recorded of run ${runId}`);
    } else {
      const at = events[cp.claim.seq - 1];
      if (!at)
        problem(
          'chain.events',
          `end at #${events.length}, but checkpoint event ${cp.event.id} recorded event #${cp.claim.seq} of this run: events are missing`,
        );
      else if (at.hash !== cp.claim.hash)
        problem(`chain.events[${cp.claim.seq - 1}]`, `is not the event checkpoint event ${cp.event.id} recorded at #${cp.claim.seq}`);
      else report.checkpoint = { seq: cp.event.seq, at: cp.event.at, hash: cp.event.hash };
    }
  }
}

/** One event on its own: its time, its payload's digest and, with the key, its link. */
function checkEvent(e: BundleEvent, runId: string | null, label: string, key: AuditKey | undefined, problem: Problem): boolean {
  if (!isObject(e)) {
    problem(label, 'is not an event');
    return false;
  }
  const what = `(seq ${e.seq}, ${e.type})`;
  if (typeof e.atUs !== 'string' || !/^-?\d+$/.test(e.atUs) || e.at !== isoMicros(e.atUs)) {
    problem(`${label}.at`, `${what} is not the event's chained time`);
    return false;
  }
  if (e.payload !== null && sha256(String(e.payload)) !== e.payloadDigest) {
    problem(`${label}.payload`, `${what} does not match its chained digest: the payload was edited`);
    return false;
  }
  if (key) {
    const message = linkMessage({
      id: String(e.id),
      run_id: runId,
      seq: String(e.seq),
      type: String(e.type),
      step_idx: e.stepIdx ?? null,
      actor: e.actor ?? null,
      at_us: e.atUs,
      prev_hash: e.prevHash ? Buffer.from(e.prevHash, 'hex') : null,
      payload_digest: Buffer.from(String(e.payloadDigest), 'hex'),
    });
    if (key.hmac(message).toString('hex') !== e.hash) {
      problem(
        label,
        `${what} does not verify under the audit key: its type, actor, time, place or payload digest was edited, or it was written without the key`,
      );
      return false;
    }
  }
  return true;
}

function checkRun(b: EvidenceBundle, ctx: Ctx, problem: Problem): void {
  const run = b.run;
  const created = ctx.ofType('run.created')[0];
  if (!created) {
    problem('run', 'has no chained run.created event');
  } else {
    const p = ctx.payload(created);
    if (p && p.workflow !== run.workflow) problem('run.workflow', `is ${show(run.workflow)}, but ${where(created)} says ${show(p.workflow)}`);
    if (p && p.version !== run.workflowVersion)
      problem('run.workflowVersion', `is ${show(run.workflowVersion)}, but ${where(created)} says ${show(p.version)}`);
    if (principalOf(created.actor) !== (run.requester ?? null)) {
      problem('run.requester', `is ${show(run.requester)}, but ${where(created)} names ${show(principalOf(created.actor))}`);
    }
  }
  const v = b.versions?.workflow;
  if (!v || v.name !== run.workflow || v.version !== run.workflowVersion) {
    problem('versions.workflow', `is ${show(v)}, not the run's workflow ${show(run.workflow)} version ${show(run.workflowVersion)}`);
  }
  if (TERMINAL.includes(String(run.status))) {
    const outcomes = ctx.ofType(...TERMINAL.map((s) => `run.${s}`));
    const last = outcomes[outcomes.length - 1];
    if (!last) problem('run.status', `is ${show(run.status)}, but no chained event ends the run`);
    else if (last.type !== `run.${run.status}`)
      problem('run.status', `is ${show(run.status)}, but the run's last chained outcome is ${last.type} (seq ${last.seq})`);
  }
}

function checkSteps(b: EvidenceBundle, ctx: Ctx, problem: Problem): void {
  const purged = b.run.journalPurgedAt !== null;
  list<BundleStep>(b.steps).forEach((s, i) => {
    const label = `steps[${i}]`;
    const own = ctx.events.filter((e) => e.stepIdx === s.idx && e.type.startsWith('step.'));
    for (const e of own) {
      const p = ctx.payload(e);
      if (p && typeof p.step === 'string' && p.step !== s.name) {
        problem(`${label}.name`, `is ${show(s.name)}, but ${where(e)} names step ${show(p.step)}`);
        break;
      }
    }
    const lastOf = (type: string) => own.filter((e) => e.type === type).pop();
    if (s.status === 'succeeded') {
      // A step marked done by a person (Resolve by hand, docs/operator-control.md) is recorded by that event.
      const done = lastOf('step.succeeded') ?? lastOf('step.recorded') ?? lastOf('step.resolved_by_hand');
      if (!done) problem(`${label}.status`, 'is "succeeded", but no chained event records its success');
      else {
        const p = ctx.payload(done);
        if (p && done.type === 'step.succeeded' && p.attempts !== s.attempts)
          problem(`${label}.attempts`, `is ${show(s.attempts)}, but ${where(done)} says ${show(p.attempts)}`);
      }
    } else if (s.status === 'failed') {
      const failed = lastOf('step.failed');
      if (!failed) problem(`${label}.status`, 'is "failed", but no chained step.failed event records it');
      else {
        const p = ctx.payload(failed);
        if (p && p.attempt !== s.attempts) problem(`${label}.attempts`, `is ${show(s.attempts)}, but ${where(failed)} says ${show(p.attempt)}`);
        if (p && !purged && !same(p.error, s.error)) problem(`${label}.error`, `differs from ${where(failed)}`);
      }
    }
    if (s.kind === 'approval') checkApprovalStep(b, ctx, s, label, problem);
    if (s.kind === 'tool' && !list<{ stepIdx: number }>(b.toolCalls).some((t) => t.stepIdx === s.idx)) {
      problem('toolCalls', `lack the call of ${label} (tool step ${show(s.name)})`);
    }
  });
}

/** An approval step records the gate's id and hash as its input and the decision as its output. */
function checkApprovalStep(b: EvidenceBundle, ctx: Ctx, s: BundleStep, label: string, problem: Problem): void {
  const input = isObject(s.input) ? s.input : null;
  const output = isObject(s.output) ? s.output : null;
  const id = input?.approvalId ?? output?.approvalId;
  if (id === undefined) return; // purged by retention
  const a = list<BundleApproval>(b.approvals).find((x) => x.id === id);
  if (!a) {
    problem(`${label}.input.approvalId`, `names approval ${show(id)}, which the bundle's approvals do not hold`);
    return;
  }
  if (input && input.paramsHash !== a.paramsHash)
    problem(`${label}.input.paramsHash`, `is ${show(input.paramsHash)}, not the hash of approval ${a.id} (${a.paramsHash})`);
  if (!output) return;
  if (output.approvalId !== a.id) problem(`${label}.output.approvalId`, `is ${show(output.approvalId)}, not ${show(a.id)}`);
  if (output.paramsHash !== a.paramsHash)
    problem(`${label}.output.paramsHash`, `is ${show(output.paramsHash)}, not the hash of approval ${a.id} (${a.paramsHash})`);
  const decided = ctx.ofApproval(a.id, 'approval.decided');
  list<Json>(output.decisions).forEach((d, j) => {
    const field = `${label}.output.decisions[${j}]`;
    const e = decided.find((x) => principalOf(x.actor) === d.principal);
    if (!e) {
      problem(`${field}.principal`, `is ${show(d.principal)}, who has no chained approval.decided event on approval ${a.id}`);
      return;
    }
    const p = ctx.payload(e) ?? {};
    for (const k of ['decision', 'comment', 'via', 'osUser'] as const) {
      if (k in d && !same(d[k], p[k])) problem(`${field}.${k}`, `is ${show(d[k])}, but ${where(e)} says ${show(p[k])}`);
    }
  });
}

function checkToolCalls(b: EvidenceBundle, ctx: Ctx, problem: Problem): void {
  const steps = list<BundleStep>(b.steps);
  const versions = list<{ name: string; version: number | null }>(b.versions?.tools);
  list<Json>(b.toolCalls).forEach((t, i) => {
    const label = `toolCalls[${i}]`;
    const k = steps.findIndex((s) => s.idx === t.stepIdx && s.kind === 'tool');
    const s = steps[k];
    if (!s) {
      problem(`${label}.stepIdx`, `is ${show(t.stepIdx)}, which is no tool step of the run`);
      return;
    }
    if (t.tool !== s.name.replace(/:\d+$/, '')) problem(`${label}.tool`, `is ${show(t.tool)}, but steps[${k}] called ${show(s.name)}`);
    for (const f of ['input', 'output', 'status', 'attempts'] as const) {
      if (!same(t[f], s[f])) problem(`${label}.${f}`, `differs from steps[${k}].${f}, the journal's record of the call`);
    }
    const called = calledToolVersion(ctx.events, s.idx);
    if (t.versionFrom === 'call') {
      if (called !== t.version) problem(`${label}.version`, `is ${show(t.version)}, but the call's chained step.started event says ${show(called ?? null)}`);
      return;
    }
    // From the registry: only where the call's event does not say (a bundle may not pass a recorded version off as unknown).
    if (called !== undefined)
      problem(`${label}.versionFrom`, `is ${show(t.versionFrom ?? null)}, but the call's chained step.started event records version ${called}`);
    const v = versions.find((x) => x.name === t.tool);
    if (!v || v.version !== (t.version ?? null)) problem(`${label}.version`, `is ${show(t.version)}, but versions.tools says ${show(v?.version)}`);
  });
}

function checkApprovals(b: EvidenceBundle, ctx: Ctx, problem: Problem, report: BundleReport): void {
  const purged = b.run.journalPurgedAt !== null;
  let purgedNoted = false;
  list<BundleApproval>(b.approvals).forEach((a, i) => {
    const label = `approvals[${i}]`;
    const opened = ctx.ofApproval(a.id, 'approval.requested', 'approval.auto_approved')[0];
    if (!opened) {
      const unreadable = ctx.events.some((e) => e.stepIdx === a.stepIdx && e.type.startsWith('approval.') && ctx.payload(e) === null);
      if (unreadable) {
        if (!purgedNoted)
          report.notes.push("Approval events were purged by retention: approvals are checked against their decisions' principals and times only.");
        purgedNoted = true;
      } else problem(`${label}.id`, `is ${show(a.id)}, which no chained approval.requested event names`);
    } else {
      const p = ctx.payload(opened) ?? {};
      if (opened.stepIdx !== a.stepIdx) problem(`${label}.stepIdx`, `is ${show(a.stepIdx)}, but ${where(opened)} is at step ${show(opened.stepIdx)}`);
      if (p.name !== a.name) problem(`${label}.name`, `is ${show(a.name)}, but ${where(opened)} says ${show(p.name)}`);
      if (p.paramsHash !== a.paramsHash)
        problem(`${label}.paramsHash`, `is ${show(a.paramsHash)}, but ${where(opened)} bound the approval to ${show(p.paramsHash)}`);
      if ((p.tool ?? null) !== (a.tool ?? null)) problem(`${label}.tool`, `is ${show(a.tool)}, but ${where(opened)} says ${show(p.tool)}`);
      if (principalOf(opened.actor) !== (a.requester ?? null))
        problem(`${label}.requester`, `is ${show(a.requester)}, but ${where(opened)} names ${show(principalOf(opened.actor))}`);
      if (opened.type === 'approval.auto_approved' && (p.reason ?? null) !== (a.autoReason ?? null)) {
        problem(`${label}.autoReason`, `is ${show(a.autoReason)}, but ${where(opened)} says ${show(p.reason)}`);
      }
      const escalated = ctx.ofApproval(a.id, 'approval.escalated');
      if (escalated.length !== a.escalations)
        problem(`${label}.escalations`, `is ${show(a.escalations)}, but the chain records ${escalated.length} escalation(s)`);
      const lastPolicy = escalated[escalated.length - 1];
      const policyText = lastPolicy ? ctx.payload(lastPolicy)?.to : p.approvers;
      const quorumText = lastPolicy ? undefined : p.quorum;
      const described = describePolicy(a);
      if (described === undefined) problem(`${label}.policy`, 'is not a resolved policy (approvers, groups, named, quorum, required)');
      else if (policyText !== described.approvers || (quorumText !== undefined && quorumText !== described.quorum)) {
        problem(
          `${label}.policy`,
          `(${described.approvers}, ${described.quorum}) is not the policy ${where(lastPolicy ?? opened)} records (${show(policyText)}${quorumText === undefined ? '' : `, ${show(quorumText)}`})`,
        );
      }
      const expires = [opened, ...escalated].map((e) => ctx.payload(e)?.expiresAt).pop();
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a bundle is untrusted input: the verifier keeps its exact String() coercion of whatever expiresAt holds, so a bundle verifies as it did before
      if ((expires ? Date.parse(String(expires)) : null) !== (a.expiresAt ? Date.parse(a.expiresAt) : null)) {
        problem(`${label}.expiresAt`, `is ${show(a.expiresAt)}, but the chain says ${show(expires)}`);
      }
    }
    if (sha256(canonicalJson(a.policy)) !== a.policyDigest) problem(`${label}.policyDigest`, `is not the digest of ${label}.policy`);
    if (!purged && paramsHash(a.params) !== a.paramsHash) {
      problem(
        `${label}.params`,
        `do not hash to ${label}.paramsHash (${String(a.paramsHash).slice(0, 12)}…): they are not the parameters the approvers were shown`,
      );
    }
    if (!purged && a.toolInput !== null && a.toolInput !== undefined && paramsHash(a.toolInput) !== a.toolInputHash) {
      problem(`${label}.toolInput`, `does not hash to ${label}.toolInputHash: it is not the input the approval covers`);
    }
    checkOutcome(a, label, ctx, problem);
    checkDecisions(a, label, ctx, problem);
  });
}

function describePolicy(a: BundleApproval): { approvers: string; quorum: string } | undefined {
  const p = a.policy;
  if (!isObject(p) || !Array.isArray(p.approvers) || !Array.isArray(p.groups) || !Array.isArray(p.named)) return undefined;
  if (a.autoReason) return { approvers: 'rule', quorum: 'none' };
  return { approvers: describeApprovers(p), quorum: describeQuorum(p) };
}

function checkOutcome(a: BundleApproval, label: string, ctx: Ctx, problem: Problem): void {
  const expected = OUTCOME_EVENT[a.status];
  if (!expected) {
    problem(`${label}.status`, `is ${show(a.status)}, which is no approval status`);
    return;
  }
  const outcomes = ctx.ofApproval(a.id, ...OUTCOME_TYPES);
  const last = outcomes[outcomes.length - 1];
  if (expected.length === 0 && last) problem(`${label}.status`, `is "pending", but ${where(last)} ended it`);
  else if (expected.length > 0 && !last && ctx.ofApproval(a.id, 'approval.requested', 'approval.auto_approved').length > 0) {
    problem(`${label}.status`, `is ${show(a.status)}, but no chained ${expected.join(' or ')} event names it`);
  } else if (last && !expected.includes(last.type)) problem(`${label}.status`, `is ${show(a.status)}, but ${where(last)} ended it`);
  const voided = outcomes.find((e) => e.type === 'approval.voided');
  if (voided && (ctx.payload(voided)?.supersededBy ?? null) !== (a.supersededBy ?? null)) {
    problem(`${label}.supersededBy`, `is ${show(a.supersededBy)}, but ${where(voided)} says ${show(ctx.payload(voided)?.supersededBy)}`);
  }
}

/** Each decision against the approval.decided event that recorded it, and each such event against a decision. */
function checkDecisions(a: BundleApproval, label: string, ctx: Ctx, problem: Problem): void {
  const taken = new Set<number>();
  list<BundleDecision>(a.decisions).forEach((d, j) => {
    const field = `${label}.decisions[${j}]`;
    const e = ctx.at(d.eventSeq);
    if (!e || e.type !== 'approval.decided') {
      problem(`${field}.eventSeq`, `is ${show(d.eventSeq)}, which is no chained approval.decided event: the decision has no chained record`);
      return;
    }
    if (taken.has(e.seq)) problem(`${field}.eventSeq`, `names event seq ${e.seq}, which another decision already names`);
    taken.add(e.seq);
    if (principalOf(e.actor) !== d.principal)
      problem(`${field}.principal`, `differs from ${where(e)}: the event says ${show(principalOf(e.actor))}, the bundle ${show(d.principal)}`);
    if (isoMicros(e.atUs) !== d.decidedAt) problem(`${field}.decidedAt`, `differs from ${where(e)}: the event says ${e.at}, the bundle ${show(d.decidedAt)}`);
    const p = ctx.payload(e);
    if (!p) return; // purged by retention: its principal and time are what is left
    if (p.approvalId !== a.id) problem(`${field}.eventSeq`, `names ${where(e)}, which records a decision on ${show(p.approvalId)}, not on ${a.id}`);
    for (const k of ['decision', 'comment', 'via', 'osUser'] as const) {
      if ((p[k] ?? null) !== (d[k] ?? null)) problem(`${field}.${k}`, `differs from ${where(e)}: the event says ${show(p[k])}, the bundle ${show(d[k])}`);
    }
    if (p.paramsHash !== undefined && p.paramsHash !== a.paramsHash) {
      problem(`${label}.paramsHash`, `is ${show(a.paramsHash)}, but ${where(e)} was decided on parameters with hash ${show(p.paramsHash)}`);
    }
  });
  for (const e of ctx.ofApproval(a.id, 'approval.decided')) {
    if (!taken.has(e.seq)) problem(`${label}.decisions`, `lack the decision of ${principalOf(e.actor) ?? '?'} recorded by ${where(e)}`);
  }
}

type BundleDecision = BundleApproval['decisions'][number];

function checkModelCalls(b: EvidenceBundle, ctx: Ctx, problem: Problem): void {
  const chained = ctx.ofType('model.called');
  const listed = list<Json>(b.modelCalls);
  chained.forEach((e, i) => {
    const m = listed[i];
    if (!m) {
      problem('modelCalls', `lack the model call recorded by ${where(e)}`);
      return;
    }
    const want = modelCallOf(e) as unknown as Json;
    for (const k of Object.keys(want)) {
      if (!same(m[k], want[k])) problem(`modelCalls[${i}].${k}`, `differs from ${where(e)}`);
    }
  });
  for (let i = chained.length; i < listed.length; i++) problem(`modelCalls[${i}]`, 'has no chained model.called event');
}

/** Reads a bundle file; a clear sentence when it cannot be read or is not one. */
export async function readBundleFile(file: string): Promise<EvidenceBundle> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new TollgateError(
      'TG_USAGE',
      `--bundle ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give the path of a file written by \`tollgate runs export\`.`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch (e) {
    throw new TollgateError(
      'TG_USAGE',
      `--bundle ${file} is not JSON (${(e as Error).message}), so it is not an evidence bundle: give a file written by \`tollgate runs export\`.`,
    );
  }
  return asBundle(parsed, file);
}

export function formatEvidenceReport(r: BundleReport): string {
  const n = (k: number, word: string) => `${k} ${word}${k === 1 ? '' : 's'}`;
  const lines: string[] = [];
  if (!r.ok) {
    lines.push(`Evidence bundle of run ${r.runId} does NOT verify (${n(r.problems.length, 'problem')}):`);
    for (const p of r.problems) lines.push(`  - ${p.message}.`);
  } else {
    const what =
      `${n(r.events, 'event')} ending at the chain head #${r.head?.seq ?? 0}, ${n(r.steps, 'step')}, ${n(r.toolCalls, 'tool call')}, ` +
      `${n(r.approvals, 'approval')} with ${n(r.decisions, 'decision')}, ${n(r.modelCalls, 'model call')}`;
    lines.push(
      r.keyed
        ? `Evidence bundle of run ${r.runId} verified with the audit key: ${what}; every link intact, every section matches its chained events, ${n(r.sealsChecked, 'field seal')} intact.`
        : `Evidence bundle of run ${r.runId} is self-consistent (${what}), but NOT authenticated: no audit key was given.`,
    );
    if (r.checkpoint) {
      const c = `checkpoint #${r.checkpoint.seq} of the global chain (${r.checkpoint.at}, hash ${r.checkpoint.hash})`;
      lines.push(r.keyed ? `Anchored by ${c}.` : `Names ${c}; without the key that checkpoint is not authenticated either.`);
    }
  }
  for (const c of r.notChecked) lines.push(`Not checked without the audit key: ${c}.`);
  for (const note of r.notes) lines.push(`Note: ${note}`);
  return lines.join('\n');
}
