-- Up Migration
-- A decision made at the shell records the operating-system user who typed it (`cli:<host>:<user>`),
-- also when it was made as another principal with `--as` (README "CLI identity"). Null for
-- decisions made in a chat, where the principal is the platform's verified identity.
ALTER TABLE tollgate.approval_decisions ADD COLUMN os_user text;

-- Down Migration
ALTER TABLE tollgate.approval_decisions DROP COLUMN os_user;
