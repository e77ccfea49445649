SELECT
    f.day, f.application,
    sum(f.findings)::BIGINT AS open_with_sla,
    sum(f.sla_breached)::BIGINT AS breached,
    round(sum(f.sla_breached) / nullif(sum(f.findings), 0), 4) AS breach_rate
FROM {{ ref('findings_daily') }} AS f
JOIN {{ invoker_input('config_sla') }} AS sla ON sla.severity = f.final_severity
WHERE f.status IN ('new', 'open', 'reopened')
GROUP BY ALL
ORDER BY f.day, f.application
