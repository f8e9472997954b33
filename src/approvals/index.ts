/**
 * Approval gates: `ctx.approval` in workflows (gate.ts, run by the executor), decisions by people
 * (decide.ts, through `runtime.decide`), the one rule of who may decide (eligibility.ts), and plain views for adapters and the CLI (store.ts).
 */
export { paramsHash, canonicalJson } from './hash.ts';
export { getApproval, listPendingApprovals, listRunApprovals } from './store.ts';
export { decide, observeDecided, type DecideOptions } from './decide.ts';
export { eligibility, mayDecide, policyEligibility, type Eligibility, type EligibilityFacts, type Ineligible, type IneligibleReason } from './eligibility.ts';
export type * from './types.ts';
