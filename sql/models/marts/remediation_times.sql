WITH ordered AS (
    SELECT *,
           max(CASE WHEN status IN ('new', 'reopened') THEN recorded_at END)
               OVER (PARTITION BY finding_id ORDER BY recorded_at ROWS UNBOUNDED PRECEDING) AS opened_at,
           lag(final_severity) OVER (PARTITION BY finding_id ORDER BY recorded_at) AS severity_before
    FROM {{ ref('findings_history') }}
)

SELECT
    o.finding_id, o.application, a.team,
    coalesce(o.previous_final_severity, o.severity_before, o.final_severity) AS final_severity,
    o.opened_at, o.recorded_at AS resolved_at,
    round(epoch(o.recorded_at - o.opened_at) / 86400, 3) AS days_to_resolve
FROM ordered AS o
LEFT JOIN {{ ref('applications') }} AS a USING (application)
WHERE o.change = 'resolved' AND o.opened_at IS NOT NULL
ORDER BY resolved_at, finding_id
