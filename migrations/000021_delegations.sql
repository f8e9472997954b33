-- Up Migration
-- Delegation (issue 21, item 5): an approver lets another principal decide in their place for a
-- period (src/approvals/delegation.ts). An approval that opens while a delegation is active lists
-- the delegate beside the delegator (the policy stored with the approval carries who stands in
-- for whom, and through which chain); the delegator keeps the right. Each decision made by a
-- delegate records whose place it took (`approval_decisions.on_behalf_of`), and so does its
-- `approval.decided` event. Creating and revoking a delegation append `delegation.created` and
-- `delegation.revoked` events to the global audit chain (run_id NULL).
-- The app role's grants cover every table of the schema (src/db/app-role.ts), this one included.
CREATE TABLE tollgate.delegations (
  id          text PRIMARY KEY,
  -- Principals, written platform:tenant:user.
  delegator   text NOT NULL,
  delegate    text NOT NULL,
  starts_at   timestamptz NOT NULL DEFAULT now(),
  ends_at     timestamptz NOT NULL,
  -- Who recorded it (the delegator, or at the shell the principal acted as) and from where.
  created_by  text NOT NULL,
  via         text,
  -- At the shell: the OS user who typed the command (cli:<host>:<user>).
  os_user     text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz,
  revoked_by  text,
  CHECK (delegator <> delegate),
  CHECK (ends_at > starts_at)
);
-- The active delegations of given delegators, read each time an approval opens or escalates.
CREATE INDEX delegations_delegator_idx ON tollgate.delegations (delegator, ends_at) WHERE revoked_at IS NULL;
CREATE INDEX delegations_delegate_idx ON tollgate.delegations (delegate, ends_at) WHERE revoked_at IS NULL;

-- Whose place a delegate's decision took (the delegator); NULL for a decision in one's own right.
ALTER TABLE tollgate.approval_decisions ADD COLUMN on_behalf_of text;

-- Down Migration
ALTER TABLE tollgate.approval_decisions DROP COLUMN on_behalf_of;
DROP TABLE tollgate.delegations;
