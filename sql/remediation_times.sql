-- Time to remediate: one row per resolution in findings_history (a finding resolved, reopened and
-- resolved again counts twice), from the change that opened it (new or reopened) to the build that
-- no longer saw it. Summaries per application and team: remediation_summary.
-- depends: findings_history, applications
-- column: finding_id: the finding
-- column: application: application when it was resolved
-- column: team: the application's team
-- column: final_severity: final severity before it was resolved
-- column: opened_at: the new or reopened change it was resolved from
-- column: resolved_at: the build that recorded it resolved
-- column: days_to_resolve: resolved_at - opened_at, in days (fractional)
WITH ordered AS (
    SELECT *,
           max(CASE WHEN status IN ('new', 'reopened') THEN recorded_at END)
               OVER (PARTITION BY finding_id ORDER BY recorded_at ROWS UNBOUNDED PRECEDING) AS opened_at,
           lag(final_severity) OVER (PARTITION BY finding_id ORDER BY recorded_at) AS severity_before
    FROM findings_history
)

SELECT
    o.finding_id, o.application, a.team,
    coalesce(o.previous_final_severity, o.severity_before, o.final_severity) AS final_severity,
    o.opened_at, o.recorded_at AS resolved_at,
    round(epoch(o.recorded_at - o.opened_at) / 86400, 3) AS days_to_resolve
FROM ordered AS o
LEFT JOIN applications AS a USING (application)
WHERE o.change = 'resolved' AND o.opened_at IS NOT NULL
ORDER BY resolved_at, finding_id
