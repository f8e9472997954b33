/**
 * `tollgate runs export <id>`: the evidence bundle of one run, one self-contained JSON document an
 * auditor can keep and check offline (`tollgate audit verify --bundle`, bundle-verify.ts). Its
 * format is documented in bundle-format.ts and docs/audit.md#evidence-bundles.
 *
 * Everything is read in one REPEATABLE READ snapshot, so the chain segment, its head and the rows
 * derived from the same events agree even while the run goes on. The exporter seals every field
 * with the audit key (bundle-seal.ts), so it needs the key of the pool it reads through.
 *
 * This module only reads. Who may export which run is the caller's question, answered like
 * `runs show` (the CLI) or by the console's guard (bundle-http.ts).
 */
import type pg from 'pg';
import { canonicalJson } from '../approvals/hash.ts';
import type { ApprovalRow } from '../db/queries/approvals.ts';
import { withTransaction } from '../db/transaction.ts';
import { TollgateError } from '../common/errors.ts';
import { formatPrincipal, principalSchema } from '../common/principals.ts';
import type { RunRow, StepRow } from '../db/queries/runs.ts';
import type { Queryable } from '../db/queryable.ts';
import { loadSteps, readRun } from '../db/queries/runs.ts';
import {
  readAuditKeyFingerprint,
  readDecisionsOf,
  readGlobalChainHead,
  readLatestRetentionRecord,
  readNewestCheckpointNaming,
  readRunApprovals,
  readRunChainEvents,
  readRunChainHead,
  type LinkedEventRow,
} from '../db/queries/audit.ts';
import { readDeploymentConfig } from '../db/queries/deployment-config.ts';
import type { WorkflowRegistry } from '../runtime/registry.ts';
import type { ToolRegistry } from '../tools/registry.ts';
import { createHash } from 'node:crypto';
import { auditKeyOf, type AuditKey } from '../db/pool-key.ts';
import { sealBundle } from './bundle-seal.ts';
import {
  calledToolVersion,
  EVIDENCE_FORMAT,
  isoMicros,
  modelCallOf,
  type BundleApproval,
  type BundleEvent,
  type BundleStep,
  type BundleToolCall,
  type EvidenceBundle,
} from './bundle-format.ts';

export interface ExportOptions {
  /** Seals the fields; defaults to the key the pool was created with (src/db/connect.ts). */
  auditKey?: AuditKey;
  /** To name the versions of the tools the workflow lists and calls. */
  registry?: WorkflowRegistry;
  tools?: ToolRegistry;
  /** Who exports (a principal), written into the bundle. */
  exportedBy?: string;
  /** For tests: the export time. */
  now?: Date;
}

const hex = (b: Buffer | null): string | null => (b === null ? null : b.toString('hex'));
const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

function toEvent(r: LinkedEventRow): BundleEvent {
  return {
    id: r.id,
    seq: Number(r.seq ?? 0),
    type: r.type,
    stepIdx: r.step_idx,
    actor: r.actor,
    atUs: r.at_us,
    at: isoMicros(r.at_us),
    prevHash: hex(r.prev_hash),
    hash: hex(r.hash) ?? '',
    payloadDigest: hex(r.payload_digest) ?? '',
    payload: r.payload,
  };
}

function principalText(v: unknown): string | null {
  const p = principalSchema.safeParse(v);
  return p.success ? formatPrincipal(p.data) : null;
}

/** The tool a step of kind 'tool' called: its name, without the `:n` of a repeated call. */
export function toolOfStep(name: string): string {
  return name.replace(/:\d+$/, '');
}

/**
 * Reads the run's bundle. Throws TG_RUN_NOT_FOUND for an unknown run, and TG_AUDIT_KEY_INVALID
 * when no audit key is at hand to seal it.
 */
export async function exportEvidenceBundle(db: pg.Pool | Queryable, runId: string, opts: ExportOptions = {}): Promise<EvidenceBundle> {
  const key = opts.auditKey ?? auditKeyOf(db);
  if (!key) {
    throw new TollgateError(
      'TG_AUDIT_KEY_INVALID',
      'Exporting an evidence bundle needs the audit key (its fields are sealed with it): set TOLLGATE_AUDIT_KEY, or run where the data dir holds audit.key.',
    );
  }
  if (!('connect' in db) || typeof db.connect !== 'function' || 'release' in db) return exportIn(db, runId, key, opts);
  return withTransaction(db, (q) => exportIn(q, runId, key, opts), 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
}

async function exportIn(q: Queryable, runId: string, key: AuditKey, opts: ExportOptions): Promise<EvidenceBundle> {
  // readRun selects every column, retention's mark among them.
  const run = await readRun(q, runId);
  if (!run) throw new TollgateError('TG_RUN_NOT_FOUND', `No run with id "${runId}". List runs with \`tollgate runs list\`.`, { runId });

  // One after the other: a snapshot is one connection, which runs one query at a time anyway.
  const steps = await loadSteps(q, runId);
  const approvalRows = await readRunApprovals(q, runId);
  const events = await readRunChainEvents(q, runId);
  const head = await readRunChainHead(q, runId);
  const globalHead = await readGlobalChainHead(q);
  const fingerprint = await readAuditKeyFingerprint(q);
  const deployment = await readDeploymentConfig(q);
  const chainEvents = events.map(toEvent);
  const seqOfEvent = new Map(chainEvents.map((e) => [e.id, e.seq]));

  const toolVersion = (name: string): number | null => (opts.tools?.has(name) ? opts.tools.get(name).version : null);
  const toolCalls = toolCallsOf(steps, chainEvents, toolVersion);
  const approvals = await loadApprovals(q, approvalRows, seqOfEvent);
  const toolNames = [...new Set([...listedTools(run, opts.registry), ...toolCalls.map((t) => t.tool)])].sort();

  const withoutSeals: Omit<EvidenceBundle, 'seals'> = {
    format: EVIDENCE_FORMAT,
    exportedAt: (opts.now ?? new Date()).toISOString(),
    exportedBy: opts.exportedBy ?? null,
    run: bundleRun(run),
    versions: {
      workflow: { name: run.workflow, version: run.workflow_version },
      tools: toolNames.map((name) => ({ name, version: toolVersion(name) })),
      deploymentConfig: deployment ? { digest: deployment.digest, setAt: deployment.set_at.toISOString() } : null,
    },
    steps: steps.map(toBundleStep),
    toolCalls,
    approvals,
    modelCalls: chainEvents.filter((e) => e.type === 'model.called').map(modelCallOf),
    chain: {
      runId,
      keyFingerprint: hex(fingerprint ?? null),
      events: chainEvents,
      head: { seq: Number(head?.seq ?? 0), hash: hex(head?.last_hash ?? null) },
      checkpoint: await newestCheckpoint(q, runId),
      retention: chainEvents.some((e) => e.payload === null) ? await latestRetention(q) : null,
      globalHead: globalHead ? { seq: Number(globalHead.seq), hash: hex(globalHead.last_hash) } : null,
    },
  };
  return { ...withoutSeals, seals: sealBundle(withoutSeals, key) };
}

function bundleRun(run: RunRow): EvidenceBundle['run'] {
  return {
    id: run.id,
    workflow: run.workflow,
    workflowVersion: run.workflow_version,
    status: run.status,
    input: run.input ?? null,
    output: run.output ?? null,
    error: run.error ?? null,
    requester: principalText(run.requester),
    origin: run.origin ?? null,
    recoveryAttempts: run.recovery_attempts,
    createdAt: run.created_at.toISOString(),
    startedAt: iso(run.started_at),
    finishedAt: iso(run.finished_at),
    journalPurgedAt: iso(run.journal_purged_at),
  };
}

function toBundleStep(s: StepRow): BundleStep {
  return {
    idx: s.idx,
    name: s.name,
    kind: s.kind,
    status: s.status,
    attempts: s.attempts,
    input: s.input ?? null,
    output: s.output ?? null,
    error: s.error ?? null,
    startedAt: s.started_at.toISOString(),
    finishedAt: iso(s.finished_at),
  };
}

/** Each call's version as its chained step.started event recorded it; older calls' from the registry. */
function toolCallsOf(steps: StepRow[], chainEvents: BundleEvent[], toolVersion: (name: string) => number | null): BundleToolCall[] {
  return steps
    .filter((s) => s.kind === 'tool')
    .map((s) => {
      const tool = toolOfStep(s.name);
      const called = calledToolVersion(chainEvents, s.idx);
      return {
        stepIdx: s.idx,
        tool,
        version: called ?? toolVersion(tool),
        versionFrom: called === undefined ? 'registry' : 'call',
        status: s.status,
        attempts: s.attempts,
        input: s.input ?? null,
        output: s.output ?? null,
      };
    });
}

/** The tools the run's workflow version lists, when it is still registered. */
function listedTools(run: RunRow, registry: WorkflowRegistry | undefined): readonly string[] {
  try {
    return registry?.get(run.workflow, run.workflow_version).tools ?? [];
  } catch {
    return []; // a workflow version no longer registered: its calls still name their tools
  }
}

async function loadApprovals(q: Queryable, rows: ApprovalRow[], seqOfEvent: Map<string, number>): Promise<BundleApproval[]> {
  const decisions = await readDecisionsOf(
    q,
    rows.map((r) => r.id),
  );
  return rows.map((a) => ({
    id: a.id,
    stepIdx: a.step_idx,
    name: a.name,
    status: a.status,
    summary: a.summary,
    params: a.params,
    paramsHash: a.params_hash,
    risk: a.risk,
    rationale: a.rationale,
    tool: a.tool,
    toolInput: a.tool_input ?? null,
    toolInputHash: a.tool_input_hash,
    requester: principalText(a.requester),
    policy: a.policy,
    policyDigest: createHash('sha256').update(canonicalJson(a.policy)).digest('hex'),
    onTimeout: a.on_timeout ?? null,
    escalations: a.escalations,
    expiresAt: iso(a.expires_at),
    autoReason: a.auto_reason,
    supersededBy: a.superseded_by,
    createdAt: a.created_at.toISOString(),
    resolvedAt: iso(a.resolved_at),
    decisions: decisions
      .filter((d) => d.approval_id === a.id)
      .map((d) => ({
        principal: d.principal,
        decision: d.decision,
        comment: d.comment,
        via: d.via,
        osUser: d.os_user,
        decidedAt: isoMicros(d.at_us),
        eventSeq: d.event_id === null ? null : (seqOfEvent.get(d.event_id) ?? null),
      })),
  }));
}

/** The newest checkpoint of the global chain that names this run, and the (seq, hash) it recorded. */
async function newestCheckpoint(q: Queryable, runId: string): Promise<EvidenceBundle['chain']['checkpoint']> {
  const row = await readNewestCheckpointNaming(q, runId);
  if (!row?.payload) return null;
  const chains = (JSON.parse(row.payload) as { chains?: unknown }).chains;
  const entry = Array.isArray(chains) ? (chains as unknown[][]).find((c) => Array.isArray(c) && c[0] === runId) : undefined;
  if (!entry) return null;
  return { event: toEvent(row), claim: { seq: Number(entry[1]), hash: String(entry[2]) } };
}

/** The retention record with the latest cutoff (what `audit verify` takes as the purge's bound). */
async function latestRetention(q: Queryable): Promise<EvidenceBundle['chain']['retention']> {
  const row = await readLatestRetentionRecord(q);
  return row ? { event: toEvent(row), cutoff: row.cutoff.toISOString() } : null;
}
