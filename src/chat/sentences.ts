/**
 * Sentences every platform says the same way, written once: the chat layer answers with them and
 * the adapters only render them (Slack mrkdwn, Teams markdown).
 */

/** A platform's re-send of something already recorded (the same delivery key). */
export const ALREADY_RECORDED = 'Already recorded.';

/** A reject without a reason: the core refuses it; the adapter shows this under the reason input. */
export const REJECT_REASON_REQUIRED = 'Say why you reject it; the requester sees this.';

/** Confirm or Edit under a proposal Tollgate no longer knows. */
export const PROPOSAL_UNKNOWN = 'This proposal is no longer known to Tollgate; ask again, or write `run <workflow> key=value …`.';

/** A form could not be opened (the platform refused it). */
export const FORM_NOT_OPENED = 'Could not open the form; try again, or write `run <workflow> key=value …`.';

/** The reject reason's form could not be opened. */
export const REASON_FORM_NOT_OPENED = 'Could not open the form for a reason; try again, or use `tollgate reject` with --comment.';

/** A run recorded from chat: where its progress will be posted. */
export function startedSentence(run: { workflow: string; version: number; id: string }, where: { thread: string | null } | null): string {
  return `Started *${run.workflow}* v${run.version} as \`${run.id}\`; its progress is posted ${where?.thread ? 'in the thread' : 'here'}.`;
}

/** How to start something without the model, said wherever free text cannot be read. */
export const RUN_FORM_HINT = '`run <workflow> key=value …`, e.g. `run demo name=Ada`; `help` lists the workflows.';
