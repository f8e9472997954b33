/**
 * The evidence bundle's format (`tollgate-evidence/1`): one self-contained JSON document about one
 * run, written by `exportEvidenceBundle` (bundle.ts) and checked offline by
 * `verifyEvidenceBundle` (bundle-verify.ts). This module holds only the shapes and the pure
 * helpers both sides must compute the same way; it touches no database.
 *
 * What is authenticated, and by what:
 * - `chain`: the run's hash-chain segment, every event with its place (seq), previous hash, payload
 *   digest, exact payload text and keyed link, so each link can be recomputed (HMAC under the
 *   audit key) and each payload re-digested; plus the chain head, the newest checkpoint naming
 *   this run and the retention record that entitles purged payloads to be missing.
 * - every other section is what the database holds about the run (run row, steps, approvals,
 *   decisions, model calls, tool calls). Whatever an event also records is cross-checked against
 *   that chained event; the rest (a step's output, an approval's summary) no event records, so
 *   the exporter seals every field with the audit key (`seals`, bundle-seal.ts).
 */
import type { ResolvedPolicy } from '../db/queries/approvals.ts';

export const EVIDENCE_FORMAT = 'tollgate-evidence/1';

/** One chained event, exactly as it was linked (`tollgate.events`). */
export interface BundleEvent {
  id: string;
  seq: number;
  type: string;
  stepIdx: number | null;
  /** The actor column's jsonb text, as the link's header covers it; null when no one acted. */
  actor: string | null;
  /** created_at in epoch microseconds (what the link covers). */
  atUs: string;
  /** The same instant for people, ISO 8601 with microseconds. */
  at: string;
  /** Hex; null for the first event of a chain. */
  prevHash: string | null;
  hash: string;
  payloadDigest: string;
  /** The payload's jsonb text, the exact bytes its digest covers; null once retention purged it. */
  payload: string | null;
}

export interface BundleRun {
  id: string;
  workflow: string;
  workflowVersion: number;
  status: string;
  input: unknown;
  output: unknown;
  error: unknown;
  /** `platform:tenant:user`; null for a run Tollgate itself started. */
  requester: string | null;
  origin: unknown;
  recoveryAttempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Set when retention purged the run's inputs, outputs, parameters and comments. */
  journalPurgedAt: string | null;
}

export interface BundleStep {
  idx: number;
  name: string;
  kind: string;
  status: string;
  attempts: number;
  /** Null when the step had none, or retention purged it (run.journalPurgedAt). */
  input: unknown;
  output: unknown;
  error: unknown;
  startedAt: string;
  finishedAt: string | null;
}

export interface BundleToolCall {
  stepIdx: number;
  tool: string;
  /**
   * The tool's version. `versionFrom: 'call'`: the version the call ran with, from the last
   * chained `step.started` event of its step. `'registry'`: that event does not say (recorded
   * before Tollgate kept it, or its payload purged by retention), so this is the exporting
   * process's registry version; null when it no longer knows the tool.
   */
  version: number | null;
  versionFrom: 'call' | 'registry';
  status: string;
  attempts: number;
  input: unknown;
  output: unknown;
}

export interface BundleDecision {
  principal: string;
  decision: string;
  comment: string | null;
  /** The platform it came through ('slack', 'teams', 'cli'). */
  via: string | null;
  /** The OS user who typed it (`cli:<host>:<user>`), for decisions made at the shell. */
  osUser: string | null;
  /** ISO 8601 with microseconds: the chained event's time. */
  decidedAt: string;
  /** seq of the `approval.decided` event in `chain.events` that recorded it; null if none is linked. */
  eventSeq: number | null;
}

export interface BundleApproval {
  id: string;
  stepIdx: number;
  name: string;
  status: string;
  summary: string;
  /** Exactly the parameters shown to approvers. */
  params: unknown;
  /** sha256 of their canonical JSON (src/approvals/hash.ts): what the approval binds to. */
  paramsHash: string;
  risk: string | null;
  rationale: string | null;
  tool: string | null;
  toolInput: unknown;
  toolInputHash: string | null;
  requester: string | null;
  /** The policy as resolved when the gate opened or last escalated. */
  policy: ResolvedPolicy;
  /** sha256 of the resolved policy's canonical JSON: compare policies across bundles by it. */
  policyDigest: string;
  onTimeout: unknown;
  escalations: number;
  expiresAt: string | null;
  autoReason: string | null;
  supersededBy: string | null;
  createdAt: string;
  resolvedAt: string | null;
  decisions: BundleDecision[];
}

/** A `model.called` event, read leniently: whatever fields the record has, null for the rest. */
export interface BundleModelCall {
  seq: number;
  stepIdx: number | null;
  at: string;
  model: string | null;
  prompt: unknown;
  /** As sent to the model: redacted before it left. */
  request: unknown;
  response: unknown;
  inputTokens: number | null;
  outputTokens: number | null;
  costUsd: number | null;
  latencyMs: number | null;
  error: unknown;
  /** True when retention purged the event's payload (only its digest is left). */
  purged: boolean;
}

export interface BundleChain {
  runId: string;
  /** HMAC(K, 'tollgate-audit-key-id'): names the key the links are keyed with, without revealing it. */
  keyFingerprint: string | null;
  events: BundleEvent[];
  /** tollgate.event_chains' row for the run when exported: the segment must end here. */
  head: { seq: number; hash: string | null };
  /** The newest `audit.checkpoint` (global chain) naming this run, and what it recorded of it. */
  checkpoint: { event: BundleEvent; claim: { seq: number; hash: string } } | null;
  /** The latest retention record (global chain) with its cutoff: payloads of older events may be missing. */
  retention: { event: BundleEvent; cutoff: string } | null;
  /** The global chain's head when exported, to compare with a copy kept elsewhere. */
  globalHead: { seq: number; hash: string | null } | null;
}

export interface EvidenceBundle {
  format: typeof EVIDENCE_FORMAT;
  exportedAt: string;
  /** Who exported it (`cli:<host>:<user>`, a console user), when known. */
  exportedBy: string | null;
  run: BundleRun;
  versions: {
    workflow: { name: string; version: number };
    tools: { name: string; version: number | null }[];
    /** The deployment's policy configuration digest when exported (src/config/digest.ts), null if none is recorded. */
    deploymentConfig: { digest: string; setAt: string } | null;
  };
  steps: BundleStep[];
  toolCalls: BundleToolCall[];
  approvals: BundleApproval[];
  modelCalls: BundleModelCall[];
  chain: BundleChain;
  /** HMAC under the audit key of every field above, by path (bundle-seal.ts). */
  seals: { keyFingerprint: string; fields: Record<string, string> } | null;
}

/** Epoch microseconds (decimal text) as ISO 8601 with six decimals: `2025-01-02T03:04:05.123456Z`. */
export function isoMicros(us: string): string {
  const n = BigInt(us);
  const ms = n / 1000n;
  const rest = ((n % 1000n) + 1000n) % 1000n;
  const base = new Date(Number(ms - (n < 0n && rest !== 0n ? 1n : 0n))).toISOString();
  return `${base.slice(0, -1)}${rest.toString().padStart(3, '0')}Z`;
}

/** A `model.called` event as the bundle lists it; the exporter and the verifier both derive it with this. */
export function modelCallOf(e: BundleEvent): BundleModelCall {
  let p: Record<string, unknown> | null = null;
  if (e.payload !== null) {
    const parsed = JSON.parse(e.payload) as unknown;
    p = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  }
  const usage = (p?.usage && typeof p.usage === 'object' ? p.usage : {}) as Record<string, unknown>;
  const num = (...vs: unknown[]) => vs.find((v): v is number => typeof v === 'number') ?? null;
  return {
    seq: e.seq,
    stepIdx: e.stepIdx,
    at: e.at,
    model: typeof p?.model === 'string' ? p.model : null,
    prompt: p?.prompt ?? null,
    request: p?.request ?? null,
    response: p?.response ?? null,
    inputTokens: num(p?.inputTokens, usage.inputTokens, usage.prompt_tokens),
    outputTokens: num(p?.outputTokens, usage.outputTokens, usage.completion_tokens),
    costUsd: num(p?.costUsd),
    latencyMs: num(p?.latencyMs),
    error: p?.error ?? null,
    purged: p === null,
  };
}

/**
 * The tool version a tool step's last attempt ran with, as its chained `step.started` event
 * records it (`toolVersion`); undefined when no such event says (older runs, purged payloads).
 * The exporter and the verifier both derive it with this.
 */
export function calledToolVersion(events: readonly BundleEvent[], stepIdx: number): number | undefined {
  const started = events.filter((e) => e.type === 'step.started' && e.stepIdx === stepIdx).pop();
  if (!started || started.payload === null) return undefined;
  const p = JSON.parse(started.payload) as { toolVersion?: unknown } | null;
  return typeof p?.toolVersion === 'number' ? p.toolVersion : undefined;
}
