{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='append_new_columns',
          full_refresh=false) }}
SELECT
    ctx.build_id,
    ctx.now AS recorded_at,
    q.finding_id,
    q.status,
    p.status AS previous_status,
    q.final_severity,
    p.final_severity AS previous_final_severity,
    q.application,
    q.repository,
    q.repository_full_name,
    q.rule_id,
    CASE WHEN q.status IS DISTINCT FROM p.status THEN q.status ELSE 'severity' END AS change
FROM {{ ref('findings_queue') }} AS q
CROSS JOIN {{ invoker_input('build_context') }} AS ctx
LEFT JOIN {{ invoker_input('previous_findings_queue') }} AS p USING (finding_id)
WHERE q.status IS DISTINCT FROM p.status
   OR q.final_severity IS DISTINCT FROM p.final_severity
