/** One line per zod issue, with the path to the field: "amount: Too small". */
import type { z } from 'zod';

export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length ? `${i.path.map(String).join('.')}: ${i.message}` : i.message)).join('; ');
}
