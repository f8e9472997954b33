-- Up Migration
-- One policy configuration per deployment (src/config-digest.ts). Every process of a deployment
-- decides approvals, operators and tool policy from its own TOLLGATE_CONFIG; two processes with
-- different files on one database would decide the same run differently, depending on which one
-- picked it up. The deployment's configuration is kept here as a digest plus, per setting path, a
-- hash of its value (never the value: a webhook URL can be a credential). Secret-named settings
-- (tokens, passwords, headers) are left out entirely: rotating a credential is not a policy change.
CREATE TABLE tollgate.deployment_config (
  -- One row: the configuration the live processes share.
  id      boolean PRIMARY KEY DEFAULT true CHECK (id),
  digest  text NOT NULL,
  -- {"paths": {"groups.finance": "<sha256 of the value>", ...}}: enough to name what differs.
  summary jsonb NOT NULL,
  set_at  timestamptz NOT NULL DEFAULT now(),
  -- Which process adopted it: "<mode> <hostname>:<pid> (<process id>)".
  set_by  text NOT NULL
);

-- The long-running processes (start, server, worker) and the configuration each runs with,
-- refreshed while they live. A process whose row is older than the liveness window is gone.
CREATE TABLE tollgate.deployment_config_holders (
  process_id text PRIMARY KEY,
  digest     text NOT NULL,
  mode       text NOT NULL,
  hostname   text,
  pid        integer,
  started_at timestamptz NOT NULL DEFAULT now(),
  seen_at    timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE tollgate.deployment_config_holders;
DROP TABLE tollgate.deployment_config;
