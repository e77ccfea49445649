{{ config(materialized='view') }}
-- finding_severities_base (incremental by repository) with today's inactive_repository evidence ("N days") in
-- place of its placeholder: the only part of a finding's severity that changes every day by itself.
WITH inactive AS (
    SELECT subject AS repository_uuid, evidence
    FROM {{ ref('severity_evidence') }}
    WHERE scope = 'repository' AND condition = 'inactive_repository'
)

SELECT
    b.finding_id,
    b.team, b.owners, b.business_priority, b.application_is_relevant,
    b.severity_steps, b.final_severity, b.severity_rank,
    CASE WHEN i.evidence IS NULL THEN b.severity_factors
         ELSE [CASE WHEN k.evidence = {{ inactive_days_placeholder() }}
                    THEN {'name': k.name, 'direction': k.direction, 'steps': k.steps, 'evidence': i.evidence}
                    ELSE k END
               FOR k IN b.severity_factors]
    END AS severity_factors,
    CASE WHEN i.evidence IS NULL THEN b.severity_explanation
         ELSE replace(b.severity_explanation, {{ inactive_days_placeholder() }}, i.evidence)
    END AS severity_explanation,
    b.severity_set_by_rule
FROM {{ ref('finding_severities_base') }} AS b
LEFT JOIN inactive AS i USING (repository_uuid)
