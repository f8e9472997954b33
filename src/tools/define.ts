/**
 * The tool API: `defineTool({ name, version, description, input, output, effect, handler })`.
 *
 * A tool is the only way a workflow (or a model inside one) touches the outside world through
 * Tollgate's governance: workflows list the tools they may call (invariant 7), every call's input
 * and output are validated with the tool's zod schemas and recorded in the journal, and a call of
 * a `write` tool needs an approved gate of the same run bound to the same parameters.
 *
 * Credentials live in the tool's configuration (`tools.<name>` in the project configuration),
 * handed to the handler as `ctx.config`; they are never part of a call's input or output.
 */
import type pg from 'pg';
import type { z } from 'zod';
import { TollgateError } from '../common/errors.ts';
import type { StepContext } from '../runtime/workflow.ts';

export type ToolEffect = 'read' | 'write';

/** What a tool's handler gets: its step's context, plus its configuration and the pool. */
export interface ToolContext extends StepContext {
  /** This tool's section of the project configuration (allowlists, credentials). */
  readonly config: Readonly<Record<string, unknown>>;
  readonly pool: pg.Pool;
}

export interface ToolDefinition<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly version: number;
  readonly description: string;
  readonly input: I;
  readonly output: O;
  /** The strongest effect a call may have. */
  readonly effect: ToolEffect;
  /** For a tool that may write: the effect of one call (e.g. an HTTP GET reads). Never above `effect`. */
  readonly effectOf?: (input: z.infer<I>) => ToolEffect;
  readonly handler: (input: z.infer<I>, ctx: ToolContext) => Promise<z.input<O>> | z.input<O>;
  /** Undo of one call, given its recorded output; used when the caller asks for compensation. */
  readonly compensate?: (output: z.infer<O>, ctx: ToolContext) => unknown; // may return a promise (awaited)
}

const NAME = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/;

export function defineTool<I extends z.ZodType, O extends z.ZodType>(spec: ToolDefinition<I, O>): ToolDefinition<I, O> {
  if (!NAME.test(spec.name)) {
    throw new TollgateError(
      'TG_TOOL_INVALID',
      `Tool name "${spec.name}" is invalid: use lowercase words of letters, digits and dashes joined by dots, e.g. http.request.`,
    );
  }
  if (!Number.isInteger(spec.version) || spec.version < 1) {
    throw new TollgateError('TG_TOOL_INVALID', `Tool "${spec.name}" has version ${String(spec.version)}: versions are integers from 1.`);
  }
  return Object.freeze({ ...spec });
}

/** The effect of this call: the tool's declared effect, lowered by `effectOf` when it says so. */
export function effectOfCall(tool: ToolDefinition, input: unknown): ToolEffect {
  if (tool.effect === 'read') return 'read';
  return tool.effectOf ? tool.effectOf(input) : 'write';
}
