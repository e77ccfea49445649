{#- The findings whose findings_daily contribution can differ between the last day the table keeps (last_day, after
    its pre-hook's delete) and a day still to compute: those with a change recorded after last_day, and those whose
    SLA can fall due on one of those days (a new or reopened change plus the SLA days of any severity, a day's margin
    either side); every finding when no day is kept. A temporary table, made by a pre-hook: with its exact row count
    DuckDB builds the semi join on it, and its keys reach the scan of findings_history under finding_states' window
    as a Bloom filter (a subquery's estimate, ~the whole history, makes it build on finding_states instead). -#}
{% macro findings_daily_candidates() -%}
CREATE OR REPLACE TEMPORARY TABLE findings_daily__candidates AS
-- bounds as joined values, not per-row tests, so DuckDB skips the history's row groups outside them (zone maps)
WITH done AS (
    SELECT CAST(max(day) AS TIMESTAMPTZ) AS last_day_start, CAST(max(day) + 1 AS TIMESTAMPTZ) AS computed_from
    FROM {{ this }}
),

sla AS (
    SELECT DISTINCT to_days(days::INTEGER) AS days
    FROM {{ invoker_input('config_sla') }}
    WHERE days IS NOT NULL
)

SELECT h.finding_id
FROM {{ ref('findings_history') }} AS h
JOIN done ON h.recorded_at >= coalesce(done.computed_from, '-infinity'::TIMESTAMPTZ)
UNION
SELECT h.finding_id
FROM {{ ref('findings_history') }} AS h
JOIN done ON true
JOIN (SELECT CAST(CAST(now AS DATE) + 2 AS TIMESTAMPTZ) AS due_before FROM {{ invoker_input('build_context') }}) AS ctx
  ON true
JOIN sla ON h.recorded_at >= done.last_day_start - sla.days AND h.recorded_at < ctx.due_before - sla.days
WHERE h.status IN ('new', 'reopened')
{%- endmacro %}
