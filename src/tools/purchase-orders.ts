/**
 * Built-in tool `purchase-orders.create`: writes an order to the Postgres ledger
 * (`tollgate.purchase_orders`), unique on the call's idempotency key, so a re-run call returns the
 * order it already wrote instead of writing a second. Its compensation voids the order.
 */
import { z } from 'zod';
import { newId } from '../common/ids.ts';
import { insertOrderOnce, voidOrder } from '../db/queries/purchase-orders.ts';
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

export const purchaseOrderTool = defineTool({
  name: PO_TOOL,
  version: 1,
  description: 'Write a purchase order to the ledger (idempotent per call).',
  input: purchaseOrderInput,
  output: purchaseOrderOutput,
  effect: 'write',
  handler: async (input, ctx) => {
    const r = await insertOrderOnce(ctx.pool, { id: newId('po'), idempotencyKey: ctx.idempotencyKey, runId: ctx.runId, ...input });
    return { orderId: r.id, status: r.status, vendor: r.vendor, amount: Number(r.amount), currency: r.currency };
  },
  compensate: async (output, ctx) => {
    await voidOrder(ctx.pool, output.orderId);
  },
});
