/**
 * What the core answers people with, as neutral views that each platform renders: a short notice,
 * the workflow list, someone's runs, their pending approvals, a run's status, why a run could
 * not start (or what a free-text request still needs), or a proposal to confirm. Plain data (JSON-safe): a reply posted through the outbox is rendered when it is
 * recorded, so its view never has to be stored.
 *
 * Notice text may use two marks that every platform can show: `*bold*` and `` `code` ``. Values
 * are inserted as they are; a platform escapes what its own markup needs.
 */
import type { RunStatus } from '../db/queries/runs.ts';
import type { ApprovalView } from '../views/approval-view.ts';
import type { FormField } from '../views/form.ts';
import type { OutdatedView } from '../views/outdated-view.ts';
import type { ProposalView } from '../views/proposal-view.ts';
import type { RunView } from '../views/run-view.ts';

export interface WorkflowSummary {
  name: string;
  version: number;
  description: string;
  /** "title (text), priority=low|high" */
  inputs: string;
}

export interface RunSummary {
  id: string;
  workflow: string;
  version: number;
  status: RunStatus;
  createdAt: Date;
}

export type ChatReply =
  | { kind: 'notice'; text: string }
  | { kind: 'workflows'; intro: string | null; workflows: WorkflowSummary[] }
  | { kind: 'runs'; title: string; runs: RunSummary[] }
  | { kind: 'approvals'; approvals: ApprovalView[] }
  | { kind: 'run-status'; run: RunView }
  | {
      kind: 'invalid-params';
      workflow: string;
      errors: { field: string; message: string }[];
      inputs: string;
      /** What was given, so a platform with forms can offer one prefilled. */
      given: Record<string, string>;
      /** The workflow's form (from its schema) and version, for platforms that draw the form in the message (Teams). */
      fields?: FormField[];
      version?: number;
      /**
       * Said instead of "Cannot start <workflow>:" (a free-text request whose parameters are
       * missing: "To start … I still need …"); notice marks allowed.
       */
      intro?: string;
    }
  /** A free-text request as understood, waiting for the asker's Confirm (or confirmed: `runId`). */
  | { kind: 'proposal'; proposal: ProposalView }
  /** A click on an outdated copy (a stale button): nothing was done; what happened since, and the state now. */
  | { kind: 'outdated'; outdated: OutdatedView };

/** A person's page (Slack's App Home): what waits for them and what they ran. */
export interface HomeView {
  approvals: ApprovalView[];
  runs: RunSummary[];
}

export const notice = (text: string): ChatReply => ({ kind: 'notice', text });
