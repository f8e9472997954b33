-- Up Migration
-- Runs by workflow and status, kept as they change, so `GET /metrics` sums a few hundred rows
-- instead of counting tollgate.runs (src/server/metrics.ts). A trigger on tollgate.runs adds 1 to
-- a run's new status and takes 1 from its old one, in the statement that changes it.
--
-- Sharded so that concurrent writers rarely wait for each other: each row counts what one shard of
-- database sessions changed, and a status's count is the sum over its shards (one shard's number
-- may go below zero: a run counted 'queued' by one session can leave that status through
-- another). The shard is the session's (pg_backend_pid() % 32), not the run's: a statement then
-- touches one shard only.
--
-- Statement-level, with transition tables: one grouped upsert per statement, however many runs it
-- changes. A row-level trigger would update the same counter row once per run in one transaction,
-- and each of those updates has to step over the versions the earlier ones left (a 30 000-run
-- INSERT took 74 s instead of 2). The grouped rows are locked in (workflow, status) order, the same
-- order for every statement, so two statements changing several runs each cannot deadlock here.
-- The UPDATE trigger cannot name the status column (PostgreSQL refuses a column list with
-- transition tables), so it runs for every UPDATE of runs; a statement that changes no status adds
-- up to nothing and writes nothing (`HAVING sum(n) <> 0`). Every UPDATE on the hot path changes a
-- status anyway (claim, suspend, finish).
CREATE TABLE tollgate.run_status_counts (
  workflow text NOT NULL,
  status   text NOT NULL,
  shard    smallint NOT NULL,
  n        bigint NOT NULL,
  PRIMARY KEY (workflow, status, shard)
);

CREATE FUNCTION tollgate.count_run_statuses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Each branch names only the transition tables its trigger has (plpgsql plans a statement when it first runs it).
  IF TG_OP = 'INSERT' THEN
    INSERT INTO tollgate.run_status_counts AS c (workflow, status, shard, n)
      SELECT workflow, status, pg_backend_pid() % 32, count(*) FROM new_runs GROUP BY workflow, status ORDER BY workflow, status
      ON CONFLICT (workflow, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO tollgate.run_status_counts AS c (workflow, status, shard, n)
      SELECT workflow, status, pg_backend_pid() % 32, sum(d) FROM (
          SELECT workflow, status, 1 AS d FROM new_runs
          UNION ALL
          SELECT workflow, status, -1 FROM old_runs) changed
        GROUP BY workflow, status HAVING sum(d) <> 0 ORDER BY workflow, status
      ON CONFLICT (workflow, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSE
    INSERT INTO tollgate.run_status_counts AS c (workflow, status, shard, n)
      SELECT workflow, status, pg_backend_pid() % 32, -count(*) FROM old_runs GROUP BY workflow, status ORDER BY workflow, status
      ON CONFLICT (workflow, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER runs_status_count_insert AFTER INSERT ON tollgate.runs
  REFERENCING NEW TABLE AS new_runs FOR EACH STATEMENT EXECUTE FUNCTION tollgate.count_run_statuses();
CREATE TRIGGER runs_status_count_update AFTER UPDATE ON tollgate.runs
  REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs FOR EACH STATEMENT EXECUTE FUNCTION tollgate.count_run_statuses();
CREATE TRIGGER runs_status_count_delete AFTER DELETE ON tollgate.runs
  REFERENCING OLD TABLE AS old_runs FOR EACH STATEMENT EXECUTE FUNCTION tollgate.count_run_statuses();

-- The runs there are now, counted once. CREATE TRIGGER above locks tollgate.runs against writes
-- until this migration commits, so no change is counted twice or missed.
INSERT INTO tollgate.run_status_counts (workflow, status, shard, n)
  SELECT workflow, status, 0, count(*) FROM tollgate.runs GROUP BY workflow, status;

-- Down Migration
DROP TRIGGER runs_status_count_delete ON tollgate.runs;
DROP TRIGGER runs_status_count_update ON tollgate.runs;
DROP TRIGGER runs_status_count_insert ON tollgate.runs;
DROP FUNCTION tollgate.count_run_statuses();
DROP TABLE tollgate.run_status_counts;
