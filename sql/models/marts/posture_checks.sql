WITH results AS (
    SELECT *, coalesce(repository_uuid, '') AS repository_key FROM {{ source('lake', 'posture_results') }}
),

chosen AS (
    SELECT workspace, repository_key, check_id,
           arg_max(repository, (status IN ('pass', 'fail'), checked_at)) AS repository,
           arg_max(status, (status IN ('pass', 'fail'), checked_at)) AS status,
           arg_max(evidence, (status IN ('pass', 'fail'), checked_at)) AS evidence,
           arg_max(finding_id, (status IN ('pass', 'fail'), checked_at)) AS finding_id,
           max(checked_at) FILTER (WHERE status IN ('pass', 'fail')) AS evaluated_at,
           max(checked_at) AS last_checked_at,
           list_sort(list_distinct(list(connection))) AS connections
    FROM results
    GROUP BY ALL
)

SELECT
    c.workspace, c.repository_key AS repository_uuid, c.repository,
    CASE WHEN c.repository IS NOT NULL THEN c.workspace || '/' || c.repository END AS repository_full_name,
    m.application,
    c.check_id, k.topic, k.title, k.category, k.severity,
    c.status, c.evidence,
    coalesce(c.evaluated_at, c.last_checked_at) AS checked_at,
    c.connections, c.finding_id
FROM chosen AS c
LEFT JOIN {{ invoker_input('config_posture_checks') }} AS k USING (check_id)
LEFT JOIN {{ ref('application_mapping') }} AS m ON m.repository_uuid = c.repository_key AND NOT m.is_monorepo_child
ORDER BY c.workspace, c.repository, c.check_id
