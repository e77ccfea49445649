-- One digest per incremental model of what all its rows are computed from besides its partitioned input (the
-- settings and SQL it reads); the next build compares it with this build's (previous_incremental_digests) and
-- recomputes every partition when it changed. No row while the model has no input (an empty history: nothing to
-- keep, and an empty warehouse stays empty).
SELECT model, digest
FROM (
    SELECT 'findings_daily' AS model, {{ findings_daily_digest() }} AS digest
    UNION ALL
    SELECT 'finding_stretches', {{ model_sql_digest('finding_stretches') }}
    UNION ALL
    SELECT 'finding_remediations', {{ model_sql_digest('finding_remediations') }}
    UNION ALL
    SELECT 'finding_correlations', {{ correlations_digest() }}
    UNION ALL
    SELECT 'repository_controls', {{ model_sql_digest('repository_controls') }}
    UNION ALL
    SELECT 'compliance_finding_digests', {{ model_sql_digest('compliance_finding_digests') }}
)
WHERE EXISTS (SELECT 1 FROM {{ ref('findings_history') }})
