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
FROM {{ source('lake', 'run_failures') }}
ORDER BY failed_at DESC, run_id
