/** The built-in tools, registered by every Tollgate process. */
import { ToolRegistry } from './registry.ts';
import { httpRequestTool } from './http-request.ts';
import { purchaseOrderTool } from './purchase-orders.ts';
import { crmContactTool } from './crm-contacts.ts';
import type { ToolDefinition } from './define.ts';

export function builtinTools(): ToolDefinition[] {
  return [httpRequestTool, purchaseOrderTool, crmContactTool];
}

export function builtinToolRegistry(): ToolRegistry {
  return new ToolRegistry().register(...builtinTools());
}

export { defineTool, type ToolDefinition, type ToolContext, type ToolEffect } from './define.ts';
export { ToolRegistry } from './registry.ts';
