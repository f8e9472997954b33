/**
 * Built-in tool `purchase-orders.create`: writes an order to the Postgres ledger
 * (`tollgate.purchase_orders`), unique on the call's idempotency key, so a re-run call returns the
 * order it already wrote instead of writing a second. Its compensation voids the order.
 */
import { z } from 'zod';
import { newId } from '../common/ids.ts';
import { defineTool } from './define.ts';

export const PO_TOOL = 'purchase-orders.create';

export const purchaseOrderInput = z.object({
  vendor: z.string().min(1).max(200),
  amount: z.number().positive().max(1e12),
  currency: z.string().regex(/^[A-Z]{3}$/, 'a three-letter ISO currency code such as EUR'),
  reason: z.string().min(1).max(2000),
});

export const purchaseOrderOutput = z.object({
  orderId: z.string(),
  status: z.enum(['open', 'void']),
  vendor: z.string(),
  amount: z.number(),
  currency: z.string(),
});

interface OrderRow {
  id: string;
  status: 'open' | 'void';
  vendor: string;
  amount: string;
  currency: string;
}

export const purchaseOrderTool = defineTool({
  name: PO_TOOL,
  version: 1,
  description: 'Write a purchase order to the ledger (idempotent per call).',
  input: purchaseOrderInput,
  output: purchaseOrderOutput,
  effect: 'write',
  handler: async (input, ctx) => {
    const { rows } = await ctx.pool.query<OrderRow>(
      `INSERT INTO tollgate.purchase_orders (id, idempotency_key, run_id, vendor, amount, currency, reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key
       RETURNING id, status, vendor, amount, currency`,
      [newId('po'), ctx.idempotencyKey, ctx.runId, input.vendor, input.amount, input.currency, input.reason],
    );
    const r = rows[0] as OrderRow;
    return { orderId: r.id, status: r.status, vendor: r.vendor, amount: Number(r.amount), currency: r.currency };
  },
  compensate: async (output, ctx) => {
    await ctx.pool.query(`UPDATE tollgate.purchase_orders SET status = 'void', voided_at = now() WHERE id = $1 AND status = 'open'`, [output.orderId]);
  },
});
