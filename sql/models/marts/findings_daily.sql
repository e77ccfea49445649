WITH days AS (
    SELECT CAST(d AS DATE) AS day
    FROM {{ invoker_input('build_context') }} AS ctx,
         range((SELECT min(valid_from) FROM {{ ref('finding_states') }}), CAST(ctx.now AS DATE) + 1,
               INTERVAL 1 DAY) AS t(d)
)

SELECT
    d.day, s.application, s.final_severity, s.status,
    count(*) AS findings,
    count(*) FILTER (WHERE s.status IN ('new', 'open', 'reopened')
                     AND s.sla_due_at < CAST(d.day + 1 AS TIMESTAMPTZ)) AS sla_breached
FROM days AS d
JOIN {{ ref('finding_states') }} AS s ON d.day >= s.valid_from AND d.day < s.valid_to
GROUP BY ALL
ORDER BY d.day, s.application, s.final_severity, s.status
