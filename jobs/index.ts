/**
 * Tollgate's Graphile Worker task list: one task per file in this folder, named after its
 * identifier.
 */
import type { TaskList } from 'graphile-worker';
import type { Runtime } from '../src/runtime/runtime.ts';
import * as runAdvance from './run-advance.ts';
import * as runSweep from './run-sweep.ts';
import * as retentionPurge from './retention-purge.ts';
import * as slackDeliver from './slack-deliver.ts';
import * as slackDedupePrune from './slack-dedupe-prune.ts';
import * as slackApprovalRemind from './slack-approval-remind.ts';

/** The worker's scheduled tasks: the stuck-run sweep always, retention when configured, Slack key pruning when Slack is. */
export function crontab(opts: { retentionDays: number | undefined; slack: boolean }): string {
  return [runSweep.crontabLine, retentionPurge.crontabLine(opts.retentionDays), opts.slack ? slackDedupePrune.crontabLine : undefined]
    .filter(Boolean)
    .join('\n');
}

export interface TaskDeps {
  runtime: Runtime;
  processId: string;
  /** Slack message delivery; absent when Slack is not configured. */
  slack?: slackDeliver.SlackDeliveryPort;
}

export function taskList(deps: TaskDeps): TaskList {
  return {
    [runAdvance.identifier]: runAdvance.makeRunAdvance(deps.runtime, deps.processId),
    [runSweep.identifier]: runSweep.makeRunSweep(deps.runtime),
    [retentionPurge.identifier]: retentionPurge.makeRetentionPurge(deps.runtime),
    [slackDeliver.identifier]: slackDeliver.makeSlackDeliver(deps.slack),
    [slackDedupePrune.identifier]: slackDedupePrune.makeSlackDedupePrune(deps.runtime.pool),
    [slackApprovalRemind.identifier]: slackApprovalRemind.makeSlackApprovalRemind(deps.slack),
  };
}
