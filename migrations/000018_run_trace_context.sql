-- Up Migration
-- One trace per run (README "Tracing"): the run's W3C trace context, kept with the run so that
-- every advance, on any worker and however many days later, makes its spans in the same trace.
-- {"traceparent": "00-<trace id>-<span id of the run's root span>-<flags>", "tracestate"?: "…",
--  "ended"?: true once the root span was exported}. NULL when tracing was off as the run was
-- created; the first advance with tracing on fills it in. No personal data, so retention keeps it.
ALTER TABLE tollgate.runs ADD COLUMN trace_context jsonb;

-- Down Migration
ALTER TABLE tollgate.runs DROP COLUMN trace_context;
