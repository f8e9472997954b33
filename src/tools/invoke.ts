/**
 * What the executor does around a tool call (`ctx.tool`): check the workflow lists the tool,
 * validate the input, and — for a write — find an approved gate of this run bound to the same
 * parameters (invariant 6), before the call becomes a journal step of kind 'tool'. The handler's
 * output is validated before it is recorded.
 */
import type pg from 'pg';
import { paramsHash } from '../approvals/hash.ts';
import { NonRetriableError, TollgateError } from '../common/errors.ts';
import type { ProjectConfig } from '../config/project-config.ts';
import { appendEvent } from '../db/queries/events.ts';
import { consumeCoveringApproval, findUsedApproval } from '../db/queries/approvals.ts';
import type { Queryable } from '../db/queryable.ts';
import { describeIssues } from '../runtime/zod-issues.ts';
import type { CompensationContext, StepContext, WorkflowDefinition } from '../runtime/workflow.ts';
import { effectOfCall, type ToolContext, type ToolDefinition, type ToolEffect } from './define.ts';
import type { ToolRegistry } from './registry.ts';
import { traceToolCall } from '../telemetry/tracing-spans.ts';

export interface PreparedCall {
  tool: ToolDefinition;
  input: unknown;
  effect: ToolEffect;
}

export function prepareToolCall(tools: ToolRegistry, def: WorkflowDefinition, runId: string, name: string, input: unknown): PreparedCall {
  if (!def.tools.includes(name)) {
    throw new TollgateError(
      'TG_TOOL_NOT_ALLOWED',
      `Workflow ${def.name} called tool "${name}", which it does not list (its tools: ${def.tools.join(', ') || 'none'}). Add it to the workflow's \`tools\`.`,
      { runId, tool: name },
    );
  }
  const tool = tools.get(name);
  const parsed = tool.input.safeParse(input);
  if (!parsed.success) {
    throw new TollgateError('TG_TOOL_INPUT_INVALID', `Invalid input for tool ${name}: ${describeIssues(parsed.error)}`, { runId, tool: name });
  }
  return { tool, input: parsed.data, effect: effectOfCall(tool, parsed.data) };
}

/**
 * Refuses a write no approved gate of this run covers; the refusal is an event too. An approval
 * covers one execution of its tool call (issue 21): the first write it covers consumes it (recorded
 * on the approval, durably, with the step that used it), so a second call with the same parameters
 * needs its own approval unless the gate said `reusable`. A replay of the step that consumed it is
 * the same execution and passes.
 */
export async function requireApproval(q: Queryable, runId: string, stepIdx: number, call: PreparedCall): Promise<string> {
  const hash = paramsHash(call.input);
  const found = await consumeCoveringApproval(q, runId, call.tool.name, hash, stepIdx);
  if (found) return found;
  const used = await findUsedApproval(q, runId, call.tool.name, hash);
  const reason = used ? `approval ${used.id} was already used by step ${used.consumed_step_idx}` : 'no approved gate with these parameters';
  await appendEvent(q, { runId, type: 'tool.refused', stepIdx, payload: { tool: call.tool.name, paramsHash: hash, reason, approvalId: used?.id } });
  throw new TollgateError(
    'TG_TOOL_NOT_APPROVED',
    used
      ? `Tool ${call.tool.name} writes, and approval ${used.id} of run ${runId} for these parameters (hash ${hash.slice(0, 12)}…) was already used by step ${used.consumed_step_idx}: ` +
          'an approval covers one execution of its tool call. Ask for another approval before calling it again, or open the gate with `reusable: true`.'
      : `Tool ${call.tool.name} writes, and no approved gate of run ${runId} covers these parameters (hash ${hash.slice(0, 12)}…). ` +
          'Ask for approval with ctx.approval({ params, tool }) bound to exactly this input before calling it.',
    { runId, tool: call.tool.name, paramsHash: hash },
  );
}

function toolContext(step: StepContext, config: ProjectConfig, pool: pg.Pool, name: string): ToolContext {
  return { ...step, config: config.tools[name] ?? {}, pool };
}

export function toolStep(call: PreparedCall, project: ProjectConfig, pool: pg.Pool) {
  const { tool } = call;
  return {
    run: async (ctx: StepContext) => {
      const out = await traceToolCall(tool, call.effect, ctx.runId, async () => tool.handler(call.input, toolContext(ctx, project, pool, tool.name)));
      const parsed = tool.output.safeParse(out);
      if (!parsed.success) {
        throw new NonRetriableError(
          `Tool ${tool.name} returned output that does not match its schema: ${describeIssues(parsed.error)}`,
          undefined,
          'TG_TOOL_OUTPUT_INVALID',
          {
            tool: tool.name,
          },
        );
      }
      return parsed.data;
    },
    compensate: tool.compensate ? async (ctx: CompensationContext) => tool.compensate?.(ctx.output, toolContext(ctx, project, pool, tool.name)) : undefined,
  };
}
