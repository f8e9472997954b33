/**
 * Task `chat-intent`: carry out a request the chat layer recorded before acknowledging it
 * (`carryOut: 'after-ack'` in src/chat/intake.ts: a run start, an approval decision, a Retry, a
 * Cancel, a proposal's Confirm, or free text for the model to read; a model that fails or hangs
 * is answered in the thread, not thrown, so that job is never retried for it). The
 * job is the durable record of the click: the intake writes a whole burst of them in one
 * statement (src/chat/intake-writes.ts), and this task carries each out in its own transaction
 * with the explanation of a refusal (`ChatCore.carryOut`). A job that fails (the database went
 * away) is retried by Graphile Worker; carrying out a click twice is harmless (a repeated decision
 * is "already recorded", a repeated Retry finds the run no longer failed), and the one
 * transaction means a crash never records the decision without its explanation or the reverse.
 *
 * One hop: a decision that resolved its gate, a Retry or a Cancel also advances the run in this
 * same job (src/worker/one-hop.ts), the run's advance job held as the fallback should the process
 * die first. Without `hop` (a process that only carries clicks out) the advance job runs as before.
 */
import type { Task } from 'graphile-worker';
import type { ChatCore } from '../src/chat/index.ts';
import { TollgateError } from '../src/common/errors.ts';
import { INTENT_TASK } from '../src/db/queries/chat-intake.ts';
import type { Runtime } from '../src/runtime/runtime.ts';
import { advanceHeld } from '../src/worker/one-hop.ts';

export const identifier = INTENT_TASK;

export function makeChatIntent(core: ChatCore | undefined, hop?: { runtime: Runtime; processId: string }): Task {
  return async (payload, helpers) => {
    if (!core) {
      // Fail (and so retry later) rather than drop: the click is carried out once chat is set up here.
      throw new TollgateError(
        'TG_CHAT_NOT_CONFIGURED',
        'No chat layer is set up in this worker, so recorded clicks wait; start the worker with the same chat configuration as the server.',
      );
    }
    const lockedBy = hop ? helpers.job.locked_by : null;
    const held = await core.carryOut(payload, lockedBy ? { holdAdvanceAs: lockedBy } : {});
    if (held && hop) await advanceHeld(hop.runtime, held, `${hop.processId}/${held.lockedBy}`, helpers.abortSignal, hop.runtime.log);
  };
}
