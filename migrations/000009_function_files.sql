-- Up Migration
-- Which version of each file in migrations/functions/ the database holds (sha256 of its text), so
-- start-up re-applies a file only when it changed, instead of re-creating its functions and
-- triggers (and taking a lock on tollgate.events) at every start and every CLI command.
CREATE TABLE tollgate.function_files (
  name       text PRIMARY KEY,
  sha256     text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE tollgate.function_files;
