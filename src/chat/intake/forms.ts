/**
 * A workflow's form in chat: its input checked with its own schema, the reply that asks again
 * with the errors under their fields, and the workflows when none is named so.
 */
import type { z } from 'zod';
import type { Principal } from '../../common/principals.ts';
import type { Command } from '../../intents/command.ts';
import type { ChatOrigin } from '../../runtime/origin.ts';
import { printable } from '../../runtime/run-input.ts';
import type { WorkflowDefinition } from '../../runtime/workflow.ts';
import { checkFormValues, describeForm, describeInputs, fieldErrors } from '../../views/form.ts';
import type { Where } from '../outbox.ts';
import type { ChatReply } from '../replies.ts';
import { toWorkflowSummary } from '../summaries.ts';
import type { Intake } from './context.ts';

/** Validates text values for a workflow with its own schema (what `startRun` would check). */
export function checkInput(
  def: WorkflowDefinition,
  values: Record<string, string | undefined>,
): { ok: true; input: unknown } | { ok: false; error: z.ZodError } {
  return checkFormValues(def.input, values);
}

/** The reply for a workflow that cannot start with these values (schema issues, or field errors by name). */
export function invalidParams(
  def: WorkflowDefinition,
  error: z.ZodError | Record<string, string>,
  given: Record<string, string>,
): Extract<ChatReply, { kind: 'invalid-params' }> {
  const errors = 'issues' in error && Array.isArray(error.issues) ? fieldErrors(error as z.ZodError) : (error as Record<string, string>);
  return {
    kind: 'invalid-params',
    workflow: def.name,
    errors: Object.entries(errors).map(([field, message]) => ({ field, message })),
    inputs: describeInputs(def.input),
    // Echoed back (and stored, for replies through the outbox): no NUL may go into jsonb.
    given: Object.fromEntries(Object.entries(given).map(([k, v]) => [printable(k), printable(v)])),
    fields: describeForm(def.input),
    version: def.version,
  };
}

export function unknownWorkflow(ix: Intake, name: string): ChatReply {
  return { kind: 'workflows', intro: `No workflow named \`${name}\`.`, workflows: ix.o.registry.latest().map(toWorkflowSummary) };
}

/** The workflow and checked input of a `run` command, or the reply saying why it cannot start. */
export function checkRun(ix: Intake, cmd: Extract<Command, { kind: 'run' }>): { def: WorkflowDefinition; input: unknown } | { reply: ChatReply } {
  const def = ix.workflow(cmd.workflow);
  if (!def) return { reply: unknownWorkflow(ix, cmd.workflow) };
  const checked = checkInput(def, cmd.params);
  if (!checked.ok) return { reply: invalidParams(def, checked.error, cmd.params) };
  return { def, input: checked.input };
}

/** The run's origin for a chat request: the platform and tenant of the actor, the place it was asked in. */
export function originOf(actor: Principal, where: Where | null): ChatOrigin {
  return { platform: actor.platform, tenant: where?.tenant ?? actor.tenant, conversation: where?.conversation ?? null, thread: where?.thread ?? null };
}
