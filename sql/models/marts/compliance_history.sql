{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='append_new_columns',
          full_refresh=false) }}
SELECT ctx.build_id, ctx.now AS recorded_at, CAST(ctx.now AS DATE) AS day,
       s.application, s.framework, s.framework_title, s.passed, s.failed, s.not_evaluable, s.score,
       s.application_is_relevant
FROM {{ ref('compliance_scores') }} AS s
CROSS JOIN {{ invoker_input('build_context') }} AS ctx
