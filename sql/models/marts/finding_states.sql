{{ config(materialized='view') }}
-- finding_stretches (stored incrementally by finding) with the current stretch ended after the build's day and the
-- SLA due date of today's config_sla
SELECT
    s.finding_id, s.application, s.status, s.final_severity,
    s.valid_from,
    coalesce(s.next_day, CAST(ctx.now AS DATE) + 1) AS valid_to,
    s.sla_started_at,
    s.sla_started_at + to_days(sla.days::INTEGER) AS sla_due_at
FROM {{ ref('finding_stretches') }} AS s
CROSS JOIN {{ invoker_input('build_context') }} AS ctx
LEFT JOIN {{ invoker_input('config_sla') }} AS sla ON sla.severity = s.final_severity
