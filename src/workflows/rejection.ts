/** The error a built-in workflow ends with when its gate is rejected or expires. */
import { NonRetriableError } from '../common/errors.ts';
import type { ApprovalResult } from '../approvals/types.ts';

export function rejectionError(what: string, gate: ApprovalResult, runId: string): NonRetriableError {
  const why =
    gate.status === 'expired'
      ? `approval ${gate.approvalId} expired with no decision`
      : `${gate.by ?? 'an approver'} rejected approval ${gate.approvalId}${gate.comment ? `: "${gate.comment}"` : ''}`;
  return new NonRetriableError(`${what} not carried out: ${why}.`, undefined, 'TG_APPROVAL_REJECTED', {
    runId,
    approvalId: gate.approvalId,
    status: gate.status,
    by: gate.by,
  });
}
