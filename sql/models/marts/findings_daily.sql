{#- Incremental by day: a day's counts depend only on the history recorded up to that day (append-only, each row
    recorded at its build's `now`) and on config_sla, so a build deletes and computes again the days from today
    (or from the day after the last day it holds, if earlier) on; every day when config_sla or this SQL changed
    (incremental_digests). A full recompute would join every day with every finding: a year of history is 365
    times the findings. -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='sync_all_columns',
          pre_hook=["{% if is_incremental() %}DELETE FROM {{ this }} WHERE day >= least("
                   "(SELECT CAST(now AS DATE) FROM {{ invoker_input('build_context') }}), "
                   "coalesce((SELECT max(day) FROM {{ this }}) + 1, DATE '9999-12-31')) "
                   "OR {{ findings_daily_digest() }} IS DISTINCT FROM "
                   "(SELECT digest FROM {{ invoker_input('previous_incremental_digests') }} "
                   "WHERE model = 'findings_daily'){% endif %}",
                    "{% if is_incremental() %}{{ findings_daily_candidates() }}{% endif %}"],
          post_hook="{% if is_incremental() %}DROP TABLE IF EXISTS temp.main.findings_daily__candidates{% endif %}") }}
-- depends_on: {{ ref('findings_history') }}
{%- if is_incremental() %}
-- After the pre-hooks the rows left are final; the days after the last of them (last_day) are computed from that
-- day's rows and the findings whose state can differ between last_day and a day still to compute (the candidates
-- of the second pre-hook, macro findings_daily_candidates). Every other finding is counted on those days by the
-- same finding_states row as on last_day, with the same SLA verdict. So a day's counts are last_day's, minus what
-- the candidates counted on last_day, plus what they count that day: a night reads finding_states for a few
-- findings only, not all of it. No row left (a digest change emptied the table): every
-- finding is a candidate, every day is computed.
WITH ctx AS (
    SELECT CAST(now AS DATE) AS today FROM {{ invoker_input('build_context') }}
),

done AS (
    SELECT max(day) AS last_day FROM {{ this }}
),

targets AS (
    -- where a state's row on a day goes: a day still to compute counts it (+1) that day; last_day's row is taken
    -- away (-1) from every day still to compute (none when no day is kept: every day from the first change on)
    SELECT CAST(t.d AS DATE) AS from_day, CAST(t.d AS DATE) AS day, 1 AS sign
    FROM ctx
    CROSS JOIN done
    CROSS JOIN range(coalesce(done.last_day + 1,
                              (SELECT min(CAST(recorded_at AS DATE)) FROM {{ ref('findings_history') }})),
                     ctx.today + 1, INTERVAL 1 DAY) AS t(d)
    UNION ALL
    SELECT done.last_day, CAST(t.d AS DATE), -1
    FROM ctx
    CROSS JOIN done
    CROSS JOIN range(done.last_day + 1, ctx.today + 1, INTERVAL 1 DAY) AS t(d)
    WHERE done.last_day IS NOT NULL
),

states AS MATERIALIZED (
    -- the candidates' states. Read once and kept apart from the days they cover: the filter on finding_id then
    -- reaches the scan of finding_stretches under finding_states (a Bloom filter of the candidates); a second
    -- reference, or the lateral range below, would have DuckDB filter after reading every stretch
    SELECT s.application, s.final_severity, s.status, s.valid_from, s.valid_to, s.sla_due_at
    FROM {{ ref('finding_states') }} AS s
    WHERE s.finding_id IN (SELECT finding_id FROM findings_daily__candidates)
),

counted AS (
    -- each candidate state on the days it covers from last_day on
    SELECT x.day, s.application, s.final_severity, s.status, x.sign AS findings,
           CASE WHEN s.status IN ('new', 'open', 'reopened')
                     AND s.sla_due_at < CAST(CAST(t.d AS DATE) + 1 AS TIMESTAMPTZ) THEN x.sign ELSE 0 END
               AS sla_breached
    FROM states AS s
    CROSS JOIN ctx
    CROSS JOIN done
    CROSS JOIN range(
        CASE WHEN done.last_day > s.valid_from THEN done.last_day ELSE s.valid_from END,
        CASE WHEN s.valid_to < ctx.today + 1 THEN s.valid_to ELSE ctx.today + 1 END,
        INTERVAL 1 DAY) AS t(d)
    JOIN targets AS x ON x.from_day = CAST(t.d AS DATE)
    WHERE s.valid_from IS NOT NULL AND s.valid_to IS NOT NULL
    UNION ALL
    -- last_day's rows, copied to every day still to compute
    SELECT x.day, f.application, f.final_severity, f.status, f.findings, f.sla_breached
    FROM {{ this }} AS f
    JOIN targets AS x ON x.from_day = f.day AND x.sign = -1
)

SELECT day, application, final_severity, status,
       sum(findings)::BIGINT AS findings, sum(sla_breached)::BIGINT AS sla_breached
FROM counted
GROUP BY ALL
HAVING sum(findings) <> 0
ORDER BY day, application, final_severity, status
{%- else %}
-- Each state counts on the days it covers, from its valid_from up to today: the same (day, state) pairs as joining a
-- calendar from the earliest valid_from, without a second pass over finding_states to find that
-- earliest day. A state with no valid_from or valid_to covers no day.
SELECT
    CAST(t.d AS DATE) AS day, s.application, s.final_severity, s.status,
    count(*) AS findings,
    count(*) FILTER (WHERE s.status IN ('new', 'open', 'reopened')
                     AND s.sla_due_at < CAST(CAST(t.d AS DATE) + 1 AS TIMESTAMPTZ)) AS sla_breached
FROM {{ ref('finding_states') }} AS s
CROSS JOIN {{ invoker_input('build_context') }} AS ctx
CROSS JOIN range(s.valid_from, CASE WHEN s.valid_to < CAST(ctx.now AS DATE) + 1 THEN s.valid_to
                                    ELSE CAST(ctx.now AS DATE) + 1 END, INTERVAL 1 DAY) AS t(d)
WHERE s.valid_from IS NOT NULL AND s.valid_to IS NOT NULL
GROUP BY ALL
ORDER BY day, s.application, s.final_severity, s.status
{%- endif %}
