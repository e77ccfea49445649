{#- finding_states as stored, incremental by finding: a finding's stretches depend only on its own history
    (append-only), so a build computes again (delete+insert by finding_id) the findings the history recorded a change
    of in this build and keeps the others; every finding when this SQL changed. The last stretch is open-ended
    (next_day null): the finding_states view ends it after the build's day. -#}
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='finding_id',
          on_schema_change='sync_all_columns') }}
-- One sort of the history (by finding, in time) serves every window: a finding's row is the last of its day when
-- the next one falls on another day, and that next day is where its stretch ends.
WITH changes AS (
    SELECT finding_id, application, status, final_severity, recorded_at, CAST(recorded_at AS DATE) AS day,
           max(CASE WHEN status IN ('new', 'reopened') THEN recorded_at END)
               OVER (PARTITION BY finding_id ORDER BY recorded_at ROWS UNBOUNDED PRECEDING) AS sla_started_at,
           lead(CAST(recorded_at AS DATE)) OVER (PARTITION BY finding_id ORDER BY recorded_at) AS next_day
    FROM {{ ref('findings_history') }}
    {%- if is_incremental() %}
    WHERE finding_id IN {{ history_findings_to_rebuild('finding_stretches') }}
    {%- endif %}
)

SELECT finding_id, application, status, final_severity, day AS valid_from, next_day, sla_started_at
FROM changes
WHERE next_day IS DISTINCT FROM day
