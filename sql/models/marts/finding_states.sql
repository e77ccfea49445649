{{ config(materialized='view') }}
-- One sort of the history (by finding, in time) serves every window: a finding's row is the last of its day when
-- the next one falls on another day, and that next day is where its stretch ends.
WITH changes AS (
    SELECT finding_id, application, status, final_severity, recorded_at, CAST(recorded_at AS DATE) AS day,
           max(CASE WHEN status IN ('new', 'reopened') THEN recorded_at END)
               OVER (PARTITION BY finding_id ORDER BY recorded_at ROWS UNBOUNDED PRECEDING) AS sla_started_at,
           lead(CAST(recorded_at AS DATE)) OVER (PARTITION BY finding_id ORDER BY recorded_at) AS next_day
    FROM {{ ref('findings_history') }}
)

SELECT
    s.finding_id, s.application, s.status, s.final_severity,
    s.day AS valid_from,
    coalesce(s.next_day, CAST(ctx.now AS DATE) + 1) AS valid_to,
    s.sla_started_at,
    s.sla_started_at + to_days(sla.days::INTEGER) AS sla_due_at
FROM changes AS s
CROSS JOIN {{ invoker_input('build_context') }} AS ctx
LEFT JOIN {{ invoker_input('config_sla') }} AS sla ON sla.severity = s.final_severity
WHERE s.next_day IS DISTINCT FROM s.day
