SELECT application, team, coalesce(final_severity, 'all') AS final_severity,
       count(*) AS resolved,
       round(avg(days_to_resolve), 2) AS mttr_days,
       round(quantile_cont(days_to_resolve, 0.5), 2) AS p50_days,
       round(quantile_cont(days_to_resolve, 0.9), 2) AS p90_days,
       max(days_to_resolve) AS max_days
FROM {{ ref('remediation_times') }}
GROUP BY GROUPING SETS ((application, team, final_severity), (application, team))
ORDER BY application, final_severity
