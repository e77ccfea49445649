{#- Incremental by day, as findings_daily (whose rows of a day are all a day's rows here read): the days from today
    (or from the day after the last day it holds, if earlier) are deleted and computed again, so every day that
    findings_daily computed again is; every day when findings_daily computed every day again or this SQL changed
    (findings_daily_digest covers config_sla and this SQL). A full recompute would aggregate every day of
    findings_daily every night. -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='sync_all_columns',
          pre_hook="{% if is_incremental() %}DELETE FROM {{ this }} WHERE day >= least("
                   "(SELECT CAST(now AS DATE) FROM {{ invoker_input('build_context') }}), "
                   "coalesce((SELECT max(day) FROM {{ this }}) + 1, DATE '9999-12-31')) "
                   "OR {{ findings_daily_digest() }} IS DISTINCT FROM "
                   "(SELECT digest FROM {{ invoker_input('previous_incremental_digests') }} "
                   "WHERE model = 'findings_daily'){% endif %}") }}
SELECT
    f.day, f.application,
    sum(f.findings)::BIGINT AS open_with_sla,
    sum(f.sla_breached)::BIGINT AS breached,
    round(sum(f.sla_breached) / nullif(sum(f.findings), 0), 4) AS breach_rate
FROM {{ ref('findings_daily') }} AS f
JOIN {{ invoker_input('config_sla') }} AS sla ON sla.severity = f.final_severity
WHERE f.status IN ('new', 'open', 'reopened')
{%- if is_incremental() %}
  -- after the pre-hook: the rows left are final, the days after the last of them are computed
  AND f.day > coalesce((SELECT max(day) FROM {{ this }}), DATE '0001-01-01')
{%- endif %}
GROUP BY ALL
ORDER BY f.day, f.application
