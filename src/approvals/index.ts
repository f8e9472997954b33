/**
 * Approval gates: `ctx.approval` in workflows (gate.ts, run by the executor), decisions by people
 * (decide.ts, through `runtime.decide`), and plain views for adapters and the CLI (store.ts).
 */
export { paramsHash, canonicalJson } from './hash.ts';
export { getApproval, listPendingApprovals, listRunApprovals } from './store.ts';
export { decide, observeDecided, type DecideOptions } from './decide.ts';
export type * from './types.ts';
