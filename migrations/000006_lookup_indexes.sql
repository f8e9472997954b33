-- Up Migration
-- "My recent runs" (App Home, /tollgate runs) filters runs by requester: without an index it
-- walked the runs table newest first until it found enough, for every approver's Home refresh.
CREATE INDEX runs_requester_idx ON tollgate.runs USING gin (requester jsonb_path_ops);
-- The hourly prune of Slack delivery keys deletes by age.
CREATE INDEX slack_deliveries_received_at_idx ON tollgate.slack_deliveries (received_at);

-- Down Migration
DROP INDEX tollgate.slack_deliveries_received_at_idx;
DROP INDEX tollgate.runs_requester_idx;
