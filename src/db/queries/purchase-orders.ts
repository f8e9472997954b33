/**
 * The purchase-order ledger (`tollgate.purchase_orders`) of the built-in tool
 * `purchase-orders.create` (src/tools/purchase-orders.ts): unique on the call's idempotency key.
 */
import type { Queryable } from '../queryable.ts';

export interface OrderRow {
  id: string;
  status: 'open' | 'void';
  vendor: string;
  /** numeric, as PostgreSQL's driver returns it: text. */
  amount: string;
  currency: string;
}

/**
 * Writes the order, or returns the one this idempotency key already wrote (a re-run of the step),
 * in one statement.
 */
export async function insertOrderOnce(
  q: Queryable,
  o: { id: string; idempotencyKey: string; runId: string; vendor: string; amount: number; currency: string; reason: string },
): Promise<OrderRow> {
  const { rows } = await q.query<OrderRow>(
    `INSERT INTO tollgate.purchase_orders (id, idempotency_key, run_id, vendor, amount, currency, reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key
       RETURNING id, status, vendor, amount, currency`,
    [o.id, o.idempotencyKey, o.runId, o.vendor, o.amount, o.currency, o.reason],
  );
  return rows[0] as OrderRow;
}

/** Voids an open order (an order already void stays as it is). */
export async function voidOrder(q: Queryable, orderId: string): Promise<void> {
  await q.query(`UPDATE tollgate.purchase_orders SET status = 'void', voided_at = now() WHERE id = $1 AND status = 'open'`, [orderId]);
}
