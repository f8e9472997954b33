/**
 * Tollgate's Graphile Worker task list: one task per file in this folder, named after its
 * identifier.
 */
import type { TaskList } from 'graphile-worker';
import type { Runtime } from '../src/runtime/runtime.ts';
import * as runAdvance from './run-advance.ts';
import * as runSweep from './run-sweep.ts';
import * as retentionPurge from './retention-purge.ts';
import * as chatDeliver from './chat-deliver.ts';
import * as chatIntent from './chat-intent.ts';
import * as chatDedupePrune from './chat-dedupe-prune.ts';
import * as chatApprovalRemind from './chat-approval-remind.ts';
import * as auditCheckpoint from './audit-checkpoint.ts';
import type { ChatDeliverer } from '../src/chat/deliver.ts';
import type { ChatCore } from '../src/chat/intake.ts';

/** The worker's scheduled tasks: the stuck-run sweep, chat key pruning and audit checkpoints always, retention unless turned off. */
export function crontab(opts: { retentionDays: number | 'off' }): string {
  return [runSweep.crontabLine, retentionPurge.crontabLine(opts.retentionDays), chatDedupePrune.crontabLine, auditCheckpoint.crontabLine]
    .filter(Boolean)
    .join('\n');
}

export interface TaskDeps {
  runtime: Runtime;
  processId: string;
  /** Chat message delivery (every configured platform); absent in processes without chat. */
  chat?: ChatDeliverer;
  /** Carries out clicks recorded before their ack (`chat-intent` jobs); absent in processes without chat. */
  intents?: ChatCore;
}

export function taskList(deps: TaskDeps): TaskList {
  return {
    [runAdvance.identifier]: runAdvance.makeRunAdvance(deps.runtime, deps.processId),
    [runSweep.identifier]: runSweep.makeRunSweep(deps.runtime),
    [retentionPurge.identifier]: retentionPurge.makeRetentionPurge(deps.runtime),
    [chatDeliver.identifier]: chatDeliver.makeChatDeliver(deps.chat),
    [chatIntent.identifier]: chatIntent.makeChatIntent(deps.intents, { runtime: deps.runtime, processId: deps.processId }),
    [chatDedupePrune.identifier]: chatDedupePrune.makeChatDedupePrune(deps.runtime.pool),
    [chatApprovalRemind.identifier]: chatApprovalRemind.makeChatApprovalRemind(deps.chat),
    [auditCheckpoint.identifier]: auditCheckpoint.makeAuditCheckpoint(deps.runtime.pool, deps.runtime.log),
  };
}
