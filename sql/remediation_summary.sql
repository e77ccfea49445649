-- Mean time to remediate and its percentiles per application, team and final severity (one row with
-- final_severity 'all' per application and team), over every resolution in remediation_times.
-- depends: remediation_times
-- column: application: application
-- column: team: the application's team
-- column: final_severity: final severity before resolution, or all
-- column: resolved: resolutions counted
-- column: mttr_days: mean days to resolve
-- column: p50_days: median days to resolve
-- column: p90_days: 90th percentile of days to resolve
-- column: max_days: the longest
SELECT application, team, coalesce(final_severity, 'all') AS final_severity,
       count(*) AS resolved,
       round(avg(days_to_resolve), 2) AS mttr_days,
       round(quantile_cont(days_to_resolve, 0.5), 2) AS p50_days,
       round(quantile_cont(days_to_resolve, 0.9), 2) AS p90_days,
       max(days_to_resolve) AS max_days
FROM remediation_times
GROUP BY GROUPING SETS ((application, team, final_severity), (application, team))
ORDER BY application, final_severity
