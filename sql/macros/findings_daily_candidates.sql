{#- The findings whose findings_daily contribution can differ between the last day the table keeps (last_day, after
    its pre-hook's delete) and a day still to compute: those with a change recorded after last_day, and those whose
    SLA can fall due on one of those days (a new or reopened change plus the SLA days of any severity, a day's margin
    either side); every finding when no day is kept. A temporary table, made by a pre-hook: with its exact row count
    DuckDB builds the semi join on it, and its keys reach the scan of finding_stretches under finding_states
    as a Bloom filter (a subquery's estimate, ~the whole history, makes it build on finding_states instead). -#}
{% macro findings_daily_candidates() -%}
CREATE OR REPLACE TEMPORARY TABLE findings_daily__candidates AS
-- bounds as joined values, not per-row tests, so DuckDB skips the history's row groups outside them (zone maps)
WITH done AS (
    SELECT CAST(max(day) AS TIMESTAMPTZ) AS last_day_start, CAST(max(day) + 1 AS TIMESTAMPTZ) AS computed_from
    FROM {{ this }}
),

sla_windows AS (
    -- per distinct SLA length (tier 1 the shortest): the times a new or reopened change can have been recorded at
    SELECT row_number() OVER (ORDER BY sla.days) AS tier,
           done.last_day_start - sla.days AS started_from, ctx.due_before - sla.days AS started_before
    FROM done
    CROSS JOIN (SELECT CAST(CAST(now AS DATE) + 2 AS TIMESTAMPTZ) AS due_before
                FROM {{ invoker_input('build_context') }}) AS ctx
    CROSS JOIN (SELECT DISTINCT to_days(days::INTEGER) AS days
                FROM {{ invoker_input('config_sla') }}
                WHERE days IS NOT NULL) AS sla
)

SELECT h.finding_id
FROM {{ ref('findings_history') }} AS h
JOIN done ON h.recorded_at >= coalesce(done.computed_from, '-infinity'::TIMESTAMPTZ)
{#- One scan of the history per SLA tier (the usual four, then one for any further tiers): joined with a single
    window, a scan gets that window's bounds as its dynamic filter and reads a few days' row groups. One join with
    every window would bound the scan by the outermost of them only (today - 120 days to today - 7 days: the bulk
    of the history, its finding_id strings read for a million rows at 1M) or, as a blockwise nested loop join,
    read the whole history. The same rows: the union over tiers of the same test. #}
{%- for tier in [1, 2, 3, 4, none] %}
UNION
SELECT h.finding_id
FROM {{ ref('findings_history') }} AS h
JOIN sla_windows AS w
  ON {% if tier %}w.tier = {{ tier }}{% else %}w.tier > 4{% endif %}
 AND h.recorded_at >= w.started_from AND h.recorded_at < w.started_before
WHERE h.status IN ('new', 'reopened')
{%- endfor %}
{%- endmacro %}
