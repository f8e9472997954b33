/**
 * The SQL of proposals (`tollgate.chat_proposals`, migration 000016): what a free-text request was
 * understood to mean (src/chat/understand.ts), kept until the person who asked confirms it.
 * Every function takes the caller's transaction: a proposal is recorded with the message that
 * shows it and the record of the model call, and confirmed with the run it starts.
 */
import { newId } from '../../common/ids.ts';
import type { Principal } from '../../common/principals.ts';
import type { Queryable } from '../queryable.ts';

/** A proposal's row as stored; src/chat/proposals.ts checks it and reads `place` back as a chat place. */
export interface ProposalDbRow {
  id: string;
  workflow: string;
  version: number;
  input: unknown;
  params: unknown;
  asker: unknown;
  place: unknown;
  message_id: string | null;
  confirmed_at: Date | null;
  run_id: string | null;
}

export async function insertProposal(
  q: Queryable,
  p: { workflow: string; version: number; input: unknown; params: Record<string, string>; asker: Principal; place: unknown },
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

/** The proposal's row; with `lock`, locked for this transaction (Confirm: two clicks are carried out one after the other). */
export async function readProposal(q: Queryable, id: string, opts: { lock?: boolean } = {}): Promise<ProposalDbRow | undefined> {
  const { rows } = await q.query<ProposalDbRow>(`SELECT * FROM tollgate.chat_proposals WHERE id = $1${opts.lock ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0];
}

export async function markProposalConfirmed(q: Queryable, id: string, runId: string): Promise<void> {
  await q.query(`UPDATE tollgate.chat_proposals SET confirmed_at = now(), run_id = $2 WHERE id = $1 AND run_id IS NULL`, [id, runId]);
}
