/**
 * Audit checkpoints: appends to the global chain a keyed `audit.checkpoint` event naming every
 * chain that changed since the previous checkpoint, with its (seq, head hash). `audit verify`
 * then checks each named chain still has that event: deleting a run whole (its events, its chain
 * row and its run row) is detected once a checkpoint named it.
 *
 * The work is one SQL function (`tollgate.audit_checkpoint`, migration 000011, SECURITY DEFINER:
 * the app's role has no right to the queue or the chain heads). Run starts never wait on a shared
 * row for it: appends only queue their chain once per interval, in their own chain's row.
 */
import { appendAuditCheckpoint } from '../db/queries/audit.ts';
import type { Queryable } from '../db/queryable.ts';

/** Writes a checkpoint of the chains changed since the last one; returns how many it named (0: nothing changed, nothing written). */
export function writeCheckpoint(q: Queryable): Promise<number> {
  return appendAuditCheckpoint(q);
}
