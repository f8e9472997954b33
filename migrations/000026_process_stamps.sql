-- Up Migration
-- Recovery in seconds on the same machine (src/common/process-stamp.ts). A worker heartbeat or a
-- configuration holder names its host and pid; with this stamp (the machine's boot id, the pid
-- namespace and the process's start time, on Linux) a process on the same host and in the same
-- pid namespace can tell that the process a row names is gone (no such pid, or the pid now
-- belongs to a process that started later) without waiting for the row to go stale. Rows without
-- a stamp (other systems, older versions) keep the timeout.
ALTER TABLE tollgate.worker_heartbeats ADD COLUMN process_stamp text;
ALTER TABLE tollgate.deployment_config_holders ADD COLUMN process_stamp text;

-- Down Migration
ALTER TABLE tollgate.deployment_config_holders DROP COLUMN process_stamp;
ALTER TABLE tollgate.worker_heartbeats DROP COLUMN process_stamp;
