{#- Incremental by day: a day's counts depend only on the history recorded up to that day (append-only, each row
    recorded at its build's `now`) and on config_sla, so a build deletes and computes again the days from today
    (or from the day after the last day it holds, if earlier) on; every day when config_sla or this SQL changed
    (incremental_digests). A full recompute would join every day with every finding: a year of history is 365
    times the findings. -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='sync_all_columns',
          pre_hook="{% if is_incremental() %}DELETE FROM {{ this }} WHERE day >= least("
                   "(SELECT CAST(now AS DATE) FROM {{ invoker_input('build_context') }}), "
                   "coalesce((SELECT max(day) FROM {{ this }}) + 1, DATE '9999-12-31')) "
                   "OR {{ findings_daily_digest() }} IS DISTINCT FROM "
                   "(SELECT digest FROM {{ invoker_input('previous_incremental_digests') }} "
                   "WHERE model = 'findings_daily'){% endif %}") }}
WITH days AS (
    SELECT CAST(d AS DATE) AS day
    FROM {{ invoker_input('build_context') }} AS ctx,
         range(
         {%- if is_incremental() %}
             -- after the pre-hook: the rows left are final; the days after the last of them are computed
             coalesce((SELECT max(day) FROM {{ this }}) + 1, (SELECT min(valid_from) FROM {{ ref('finding_states') }})),
         {%- else %}
             (SELECT min(valid_from) FROM {{ ref('finding_states') }}),
         {%- endif %}
               CAST(ctx.now AS DATE) + 1, INTERVAL 1 DAY) AS t(d)
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
