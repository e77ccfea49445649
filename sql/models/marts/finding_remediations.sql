{#- remediation_times as stored, incremental by finding: a resolution's row depends only on its finding's history
    (append-only), so a build recomputes (delete+insert by finding_id) the findings the history recorded a change of
    in this build, and keeps the others; every finding when this SQL changed. The first build and a --full-refresh
    compute them all. -#}
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='finding_id',
          on_schema_change='sync_all_columns') }}
WITH history AS (
    SELECT h.*
    FROM {{ ref('findings_history') }} AS h
    {%- if is_incremental() %}
    WHERE h.finding_id IN {{ history_findings_to_rebuild('finding_remediations') }}
    {%- endif %}
),

ordered AS (
    SELECT *,
           max(CASE WHEN status IN ('new', 'reopened') THEN recorded_at END)
               OVER (PARTITION BY finding_id ORDER BY recorded_at ROWS UNBOUNDED PRECEDING) AS opened_at,
           lag(final_severity) OVER (PARTITION BY finding_id ORDER BY recorded_at) AS severity_before
    FROM history
)

SELECT
    o.finding_id, o.application,
    coalesce(o.previous_final_severity, o.severity_before, o.final_severity) AS final_severity,
    o.opened_at, o.recorded_at AS resolved_at,
    round(epoch(o.recorded_at - o.opened_at) / 86400, 3) AS days_to_resolve
FROM ordered AS o
WHERE o.change = 'resolved' AND o.opened_at IS NOT NULL
