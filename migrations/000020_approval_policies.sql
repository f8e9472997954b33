-- Up Migration
-- Policies as code (docs/policies.md): which rule of which version of the workflow's configured
-- policy opened the gate. `policy_digest` is the sha256 of the canonical JSON of that policy
-- (version and rules), so an audit can tell exactly which text decided who had to approve.
-- NULL for gates whose approvers a workflow names in code, without a policy.
ALTER TABLE tollgate.approvals ADD COLUMN policy_rule text;
ALTER TABLE tollgate.approvals ADD COLUMN policy_version integer;
ALTER TABLE tollgate.approvals ADD COLUMN policy_digest text;

-- Approvals are consumed by use: an approval covers one execution of the write tool call it is
-- bound to, the journal step `consumed_step_idx` of its run. A replay of that same step (after a
-- crash, a retry) is the same execution and passes again; another step with the same parameters
-- needs an approval of its own, unless the gate said `reusable`.
ALTER TABLE tollgate.approvals ADD COLUMN reusable boolean NOT NULL DEFAULT false;
ALTER TABLE tollgate.approvals ADD COLUMN consumed_step_idx integer;

-- Down Migration
ALTER TABLE tollgate.approvals DROP COLUMN consumed_step_idx;
ALTER TABLE tollgate.approvals DROP COLUMN reusable;
ALTER TABLE tollgate.approvals DROP COLUMN policy_digest;
ALTER TABLE tollgate.approvals DROP COLUMN policy_version;
ALTER TABLE tollgate.approvals DROP COLUMN policy_rule;
