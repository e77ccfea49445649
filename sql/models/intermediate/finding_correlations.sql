{#- Incremental by repository (a problem's findings share one): a build deletes and computes again the rows of the
    repositories whose findings or severities changed, or of every repository when the line window or this SQL did
    (macro correlations_to_rebuild), and of any repository gone. -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='sync_all_columns',
          pre_hook="{% if is_incremental() %}{{ finding_correlations_delete() }}{% endif %}") }}
-- depends_on: {{ ref('finding_severity_digests') }}
WITH candidates AS (
    SELECT finding_id, scanner, rule_id, repository_uuid, file_path, cwe_family, severity_rank,
           start_line, greatest(start_line, coalesce(end_line, start_line)) AS end_line
    FROM {{ ref('enriched_findings') }}
    WHERE cwe_family IS NOT NULL AND file_path IS NOT NULL AND start_line IS NOT NULL
      AND code_context_effect <> 'exclude'
    {%- if is_incremental() %}
      AND repository_uuid IN {{ correlations_to_rebuild() }}
    {%- endif %}
),

reaches AS (
    SELECT *,
           max(end_line) OVER (PARTITION BY repository_uuid, file_path, cwe_family ORDER BY start_line, finding_id
                               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach_before
    FROM candidates
),

islands AS (
    SELECT r.*,
           sum(CASE WHEN r.reach_before IS NULL OR r.start_line > r.reach_before + ctx.correlation_line_window
                    THEN 1 ELSE 0 END)
               OVER (PARTITION BY r.repository_uuid, r.file_path, r.cwe_family ORDER BY r.start_line, r.finding_id
                     ROWS UNBOUNDED PRECEDING) AS island
    FROM reaches AS r, {{ invoker_input('build_context') }} AS ctx
),

correlated AS (
    -- the islands more than one scanner reports (few): the ordered lists below only for those
    SELECT repository_uuid, file_path, cwe_family, island
    FROM islands
    GROUP BY ALL
    HAVING count(DISTINCT scanner) > 1
),

problems AS (
    SELECT repository_uuid, file_path, cwe_family, island,
           list(finding_id ORDER BY severity_rank DESC, start_line, scanner, finding_id) AS problem_finding_ids,
           list_sort(list_distinct(list(scanner || ':' || rule_id))) AS detected_by
    FROM islands
    JOIN correlated USING (repository_uuid, file_path, cwe_family, island)
    GROUP BY ALL
)

SELECT i.finding_id, p.problem_finding_ids[1] AS problem_id, i.finding_id = p.problem_finding_ids[1] AS is_primary,
       i.cwe_family, p.detected_by, p.problem_finding_ids, i.repository_uuid
FROM islands AS i
JOIN problems AS p USING (repository_uuid, file_path, cwe_family, island)
