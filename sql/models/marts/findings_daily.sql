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
-- Each state counts on the days it covers, from its valid_from (or the first day still to compute) up to today: the
-- same (day, state) pairs as joining a calendar from the earliest valid_from, without a second pass over
-- finding_states (its window) to find that earliest day. A state with no valid_from or valid_to covers no day.
SELECT
    CAST(t.d AS DATE) AS day, s.application, s.final_severity, s.status,
    count(*) AS findings,
    count(*) FILTER (WHERE s.status IN ('new', 'open', 'reopened')
                     AND s.sla_due_at < CAST(CAST(t.d AS DATE) + 1 AS TIMESTAMPTZ)) AS sla_breached
FROM {{ ref('finding_states') }} AS s
CROSS JOIN {{ invoker_input('build_context') }} AS ctx
{%- if is_incremental() %}
-- after the pre-hook: the rows left are final; the days after the last of them are computed
CROSS JOIN (SELECT max(day) + 1 AS first_day FROM {{ this }}) AS done
{%- endif %}
CROSS JOIN range(
    {%- if is_incremental() %}
        CASE WHEN done.first_day > s.valid_from THEN done.first_day ELSE s.valid_from END,
    {%- else %}
        s.valid_from,
    {%- endif %}
        CASE WHEN s.valid_to < CAST(ctx.now AS DATE) + 1 THEN s.valid_to ELSE CAST(ctx.now AS DATE) + 1 END,
        INTERVAL 1 DAY) AS t(d)
WHERE s.valid_from IS NOT NULL AND s.valid_to IS NOT NULL
GROUP BY ALL
ORDER BY day, s.application, s.final_severity, s.status
