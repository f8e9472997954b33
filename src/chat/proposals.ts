/**
 * Proposals (`tollgate.chat_proposals`, migration 000016): what a free-text request was
 * understood to mean (src/chat/understand.ts), kept until the person who asked confirms it.
 * Their SQL is in src/db/queries/proposals.ts; here a stored row is checked and read back as a
 * `ProposalRow`. Every function takes the caller's transaction: a proposal is recorded with the
 * message that shows it and the record of the model call, and confirmed with the run it starts.
 */
import { z } from 'zod';
import { principalSchema, type Principal } from '../common/principals.ts';
import type { Queryable } from '../db/queryable.ts';
import { readProposal } from '../db/queries/proposals.ts';
import { whereSchema, type Where } from './outbox.ts';

export interface ProposalRow {
  id: string;
  workflow: string;
  version: number;
  /** Checked with the workflow's schema: real values. */
  input: unknown;
  /** The same parameters as text (what a form submits). */
  params: Record<string, string>;
  asker: Principal;
  place: Where;
  messageId: string | null;
  confirmedAt: Date | null;
  runId: string | null;
}

const rowSchema = z.object({
  id: z.string(),
  workflow: z.string(),
  version: z.number(),
  input: z.unknown(),
  params: z.record(z.string(), z.string()),
  asker: principalSchema,
  place: whereSchema,
  message_id: z.string().nullable(),
  confirmed_at: z.date().nullable(),
  run_id: z.string().nullable(),
});

function toRow(r: unknown): ProposalRow {
  const p = rowSchema.parse(r);
  return {
    id: p.id,
    workflow: p.workflow,
    version: p.version,
    input: p.input,
    params: p.params,
    asker: p.asker,
    place: p.place,
    messageId: p.message_id,
    confirmedAt: p.confirmed_at,
    runId: p.run_id,
  };
}

/** The proposal; with `lock`, locked for this transaction (Confirm: two clicks are carried out one after the other). */
export async function getProposal(q: Queryable, id: string, opts: { lock?: boolean } = {}): Promise<ProposalRow | undefined> {
  const row = await readProposal(q, id, opts);
  return row ? toRow(row) : undefined;
}
