-- Each finding's state over time, replayed from findings_history: one row per finding and stretch of
-- days in which its status, final severity and application stayed as the last change of the first day
-- left them (several changes on one day: the day's last wins). The SLA clock of a stretch starts at the
-- finding's latest `new` or `reopened` change. The history marts (findings_daily, remediation_times) read it.
-- materialized: view
-- depends: findings_history, build_context, config_sla
-- column: finding_id: the finding
-- column: application: application at the time
-- column: status: status during the stretch
-- column: final_severity: final severity during the stretch
-- column: valid_from: first day of the stretch
-- column: valid_to: the day after its last day (the day after the build's day for the current stretch)
-- column: sla_started_at: when the SLA clock of this stretch started (latest new or reopened change)
-- column: sla_due_at: sla_started_at + the SLA days of its final severity (null: no SLA)
WITH changes AS (
    SELECT finding_id, application, status, final_severity, recorded_at, CAST(recorded_at AS DATE) AS day,
           max(CASE WHEN status IN ('new', 'reopened') THEN recorded_at END)
               OVER (PARTITION BY finding_id ORDER BY recorded_at ROWS UNBOUNDED PRECEDING) AS sla_started_at
    FROM findings_history
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
CROSS JOIN build_context AS ctx
LEFT JOIN config_sla AS sla ON sla.severity = s.final_severity
