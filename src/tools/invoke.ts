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
import { findCoveringApproval } from '../db/queries/approvals.ts';
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

/** Refuses a write no approved gate of this run covers; the refusal is an event too. */
export async function requireApproval(q: Queryable, runId: string, stepIdx: number, call: PreparedCall): Promise<string> {
  const hash = paramsHash(call.input);
  const found = await findCoveringApproval(q, runId, call.tool.name, hash);
  if (found) return found;
  await appendEvent(q, {
    runId,
    type: 'tool.refused',
    stepIdx,
    payload: { tool: call.tool.name, paramsHash: hash, reason: 'no approved gate with these parameters' },
  });
  throw new TollgateError(
    'TG_TOOL_NOT_APPROVED',
    `Tool ${call.tool.name} writes, and no approved gate of run ${runId} covers these parameters (hash ${hash.slice(0, 12)}…). ` +
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
