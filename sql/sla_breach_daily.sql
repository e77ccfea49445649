-- SLA breach rate over time: per day and application, the open findings with an SLA and the share of
-- them past their due date at the end of the day (from findings_daily).
-- depends: findings_daily, config_sla
-- column: day: the day (UTC)
-- column: application: application
-- column: open_with_sla: open findings (new, open, reopened) whose final severity has an SLA
-- column: breached: of those, past their due date
-- column: breach_rate: breached / open_with_sla, 0..1 (null: nothing open with an SLA)
SELECT
    f.day, f.application,
    sum(f.findings)::BIGINT AS open_with_sla,
    sum(f.sla_breached)::BIGINT AS breached,
    round(sum(f.sla_breached) / nullif(sum(f.findings), 0), 4) AS breach_rate
FROM findings_daily AS f
JOIN config_sla AS sla ON sla.severity = f.final_severity
WHERE f.status IN ('new', 'open', 'reopened')
GROUP BY ALL
ORDER BY f.day, f.application
