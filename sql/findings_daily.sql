-- The queue as it stood at the end of each day, replayed from findings_history (so it covers every day
-- since the first build, including days before this model existed): one row per day, application,
-- final severity and status, with how many of those findings were past their SLA due date that day.
-- depends: finding_states, build_context
-- column: day: the day (UTC)
-- column: application: application
-- column: final_severity: final severity that day
-- column: status: status that day: new | open | reopened | resolved | suppressed | excluded | correlated
-- column: findings: findings in that state
-- column: sla_breached: of those, open (new, open, reopened) past their SLA due date at the end of the day
WITH days AS (
    SELECT CAST(d AS DATE) AS day
    FROM build_context AS ctx,
         range((SELECT min(valid_from) FROM finding_states), CAST(ctx.now AS DATE) + 1, INTERVAL 1 DAY) AS t(d)
)

SELECT
    d.day, s.application, s.final_severity, s.status,
    count(*) AS findings,
    count(*) FILTER (WHERE s.status IN ('new', 'open', 'reopened')
                     AND s.sla_due_at < CAST(d.day + 1 AS TIMESTAMPTZ)) AS sla_breached
FROM days AS d
JOIN finding_states AS s ON d.day >= s.valid_from AND d.day < s.valid_to
GROUP BY ALL
ORDER BY d.day, s.application, s.final_severity, s.status
