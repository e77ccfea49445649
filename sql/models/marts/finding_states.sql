{{ config(materialized='view') }}
WITH changes AS (
    SELECT finding_id, application, status, final_severity, recorded_at, CAST(recorded_at AS DATE) AS day,
           max(CASE WHEN status IN ('new', 'reopened') THEN recorded_at END)
               OVER (PARTITION BY finding_id ORDER BY recorded_at ROWS UNBOUNDED PRECEDING) AS sla_started_at
    FROM {{ ref('findings_history') }}
),

last_of_day AS (
    SELECT * FROM changes
    QUALIFY row_number() OVER (PARTITION BY finding_id, day ORDER BY recorded_at DESC) = 1
)

SELECT
    s.finding_id, s.application, s.status, s.final_severity,
    s.day AS valid_from,
    coalesce(lead(s.day) OVER (PARTITION BY s.finding_id ORDER BY s.day),
             CAST(ctx.now AS DATE) + 1) AS valid_to,
    s.sla_started_at,
    s.sla_started_at + to_days(sla.days::INTEGER) AS sla_due_at
FROM last_of_day AS s
CROSS JOIN {{ invoker_input('build_context') }} AS ctx
LEFT JOIN {{ invoker_input('config_sla') }} AS sla ON sla.severity = s.final_severity
