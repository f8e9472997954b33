/**
 * Whether retrying a failed run can help. A run that failed because one of its approval gates was
 * rejected or expired would meet the same recorded decision on replay and fail again, so Retry is
 * neither offered (src/views/run-view.ts) nor accepted (runtime.retry) for it; the person is told
 * why instead. Everything else that failed may succeed on a retry.
 */
import type { RunRow } from '../db/queries/runs.ts';

export function whyNotRetryable(run: Pick<RunRow, 'id' | 'error'>): string | undefined {
  const error = run.error as { code?: unknown; details?: { approvalId?: unknown; status?: unknown }; givenUp?: { by?: unknown; reason?: unknown } } | null;
  // Given up by an operator (Resolve by hand's "Give up"): left failed for a person to finish.
  if (error?.givenUp) {
    const by = typeof error.givenUp.by === 'string' ? error.givenUp.by : 'an operator';
    return `Run ${run.id} was given up by ${by} (${typeof error.givenUp.reason === 'string' ? error.givenUp.reason : 'no reason given'}); it stays failed for a person to finish, so it cannot be retried.`;
  }
  if (error?.code !== 'TG_APPROVAL_REJECTED') return undefined;
  const approvalId = typeof error.details?.approvalId === 'string' ? error.details.approvalId : 'its approval';
  const how = error.details?.status === 'expired' ? 'expired' : 'was rejected';
  return `Run ${run.id} cannot be retried: ${approvalId} ${how}, and a retry would meet the same decision. Start a new run to ask again.`;
}
