/**
 * Built-in tool `crm.upsert-contact`: writes a contact to `tollgate.contacts`, unique on the call's
 * idempotency key, so a re-run of the step (a crash after the write, a retry) returns the contact
 * it already wrote instead of writing a second. A write: it needs an approved gate of the run
 * bound to exactly this contact (the `crm-from-email` workflow's approval shows it).
 */
import { z } from 'zod';
import { newId } from '../common/ids.ts';
import { insertContactOnce } from '../db/queries/contacts.ts';
import { defineTool } from './define.ts';

export const CRM_CONTACT_TOOL = 'crm.upsert-contact';

const field = (max: number) => z.string().max(max).nullable();

/** A contact as the tool writes it: every field present, null when not known. */
export const crmContact = z.object({
  name: field(200),
  email: field(320),
  company: field(200),
  phone: field(50),
  title: field(200),
  notes: field(2000),
});
export type CrmContact = z.infer<typeof crmContact>;

export const crmContactOutput = z.object({
  contactId: z.string(),
  /** False when this call's key had already written the contact (a re-run of the step). */
  created: z.boolean(),
});

export const crmContactTool = defineTool({
  name: CRM_CONTACT_TOOL,
  version: 1,
  description: 'Write a contact to the contacts table (idempotent per call).',
  input: crmContact,
  output: crmContactOutput,
  effect: 'write',
  handler: async (input, ctx) => {
    const r = await insertContactOnce(ctx.pool, { id: newId('ctc'), idempotencyKey: ctx.idempotencyKey, runId: ctx.runId, ...input });
    return { contactId: r.id, created: r.created };
  },
});
