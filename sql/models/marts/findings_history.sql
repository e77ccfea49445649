{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='append_new_columns',
          full_refresh=false) }}
-- the rows of findings_queue_base this build computed whose status or final severity moved: a row it did not
-- compute kept both
SELECT
    ctx.build_id,
    ctx.now AS recorded_at,
    q.finding_id,
    q.status,
    q.previous_status,
    q.final_severity,
    q.previous_final_severity,
    q.application,
    q.repository,
    q.workspace || '/' || q.repository AS repository_full_name,
    q.rule_id,
    CASE WHEN q.status IS DISTINCT FROM q.previous_status THEN q.status ELSE 'severity' END AS change
FROM {{ ref('findings_queue_base') }} AS q
CROSS JOIN {{ invoker_input('build_context') }} AS ctx
WHERE {{ computed_in_this_build('q') }}
  AND (q.status IS DISTINCT FROM q.previous_status OR q.final_severity IS DISTINCT FROM q.previous_final_severity)
