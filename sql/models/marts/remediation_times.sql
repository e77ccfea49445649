{{ config(materialized='view') }}
-- finding_remediations (stored incrementally by finding) with the application's team as it is today
SELECT
    r.finding_id, r.application, a.team, r.final_severity, r.opened_at, r.resolved_at, r.days_to_resolve
FROM {{ ref('finding_remediations') }} AS r
LEFT JOIN {{ ref('applications') }} AS a USING (application)
ORDER BY r.resolved_at, r.finding_id
