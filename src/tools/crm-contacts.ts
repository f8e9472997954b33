/**
 * Built-in tool `crm.upsert-contact`: writes a contact to `tollgate.contacts`, unique on the call's
 * idempotency key, so a re-run of the step (a crash after the write, a retry) returns the contact
 * it already wrote instead of writing a second. A write: it needs an approved gate of the run
 * bound to exactly this contact (the `crm-from-email` workflow's approval shows it).
 */
import { z } from 'zod';
import { newId } from '../common/ids.ts';
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
    // `xmax = 0` is true only for the row this statement inserted, not for the one it found.
    const { rows } = await ctx.pool.query<{ id: string; created: boolean }>(
      `INSERT INTO tollgate.contacts (id, idempotency_key, run_id, name, email, company, phone, title, notes)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key
       RETURNING id, (xmax = 0) AS created`,
      [newId('ctc'), ctx.idempotencyKey, ctx.runId, input.name, input.email, input.company, input.phone, input.title, input.notes],
    );
    const r = rows[0] as { id: string; created: boolean };
    return { contactId: r.id, created: r.created };
  },
});
