-- Pipeline runs that failed, newest first, as the run-failure sensor recorded them: which job,
-- connection and steps, the error (redacted) and when. A connection missing from the findings is
-- explained here; the nightly warehouse build still runs when one account's run fails.
-- depends: run_failures
-- column: run_id: Dagster run id (open it in the UI under Runs)
-- column: job_name: nightly_scan | scan_on_demand | build_warehouse | verify_connectivity | …
-- column: connection: connection partition of the run (null: a run of no connection, the warehouse)
-- column: trigger: what launched it: a schedule or sensor name, backfill, or manual
-- column: night: the nightly schedule's date the run belongs to (null: not a nightly run)
-- column: failed_steps: steps that failed (empty: the run failed outside a step)
-- column: error: the error that stopped it, redacted and cut to 2,000 characters
-- column: failed_at: when the failure was recorded (UTC)
-- column: status: failed, or degraded (the run finished but some repositories or scanners failed)
SELECT
    run_id,
    job_name,
    NULLIF(connection, '_pipeline') AS connection,
    trigger,
    night,
    failed_steps,
    error,
    failed_at,
    COALESCE(status, 'failed') AS status
FROM run_failures
ORDER BY failed_at DESC, run_id
