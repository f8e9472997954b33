/**
 * The SQL of proposals (`tollgate.chat_proposals`, migration 000016): what a free-text request was
 * understood to mean (src/intents/understand.ts), kept until the person who asked confirms it.
 * Every function takes the caller's transaction: a proposal is recorded with the message that
 * shows it and the record of the model call, and confirmed with the run it starts.
 */
import { z } from 'zod';
import { newId } from '../common/ids.ts';
import { principalSchema, type Principal } from '../common/principals.ts';
import type { Queryable } from '../db/queryable.ts';
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
    place: p.place as Where,
    messageId: p.message_id,
    confirmedAt: p.confirmed_at,
    runId: p.run_id,
  };
}

export async function insertProposal(
  q: Queryable,
  p: { workflow: string; version: number; input: unknown; params: Record<string, string>; asker: Principal; place: Where },
): Promise<string> {
  const id = newId('prop');
  await q.query(`INSERT INTO tollgate.chat_proposals (id, workflow, version, input, params, asker, place) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
    id,
    p.workflow,
    p.version,
    JSON.stringify(p.input),
    JSON.stringify(p.params),
    JSON.stringify(p.asker),
    JSON.stringify(p.place),
  ]);
  return id;
}

/** Which outbox row shows the proposal (it is redrawn there once confirmed). */
export async function setProposalMessage(q: Queryable, id: string, messageId: string): Promise<void> {
  await q.query(`UPDATE tollgate.chat_proposals SET message_id = $2 WHERE id = $1`, [id, messageId]);
}

/** The proposal; with `lock`, locked for this transaction (Confirm: two clicks are carried out one after the other). */
export async function getProposal(q: Queryable, id: string, opts: { lock?: boolean } = {}): Promise<ProposalRow | undefined> {
  const { rows } = await q.query(`SELECT * FROM tollgate.chat_proposals WHERE id = $1${opts.lock ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0] ? toRow(rows[0]) : undefined;
}

export async function markProposalConfirmed(q: Queryable, id: string, runId: string): Promise<void> {
  await q.query(`UPDATE tollgate.chat_proposals SET confirmed_at = now(), run_id = $2 WHERE id = $1 AND run_id IS NULL`, [id, runId]);
}
