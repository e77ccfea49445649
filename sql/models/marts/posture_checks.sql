{#- Incremental by workspace and repository: a build deletes and computes again the rows of the keys whose inputs
    changed (posture_check_digests, macro changed_posture_keys) and of any key that is gone; the first build, and
    every build after a change of the check catalog or this SQL, computes them all. -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='sync_all_columns',
          pre_hook="{% if is_incremental() %}DELETE FROM {{ this }} AS t WHERE EXISTS (SELECT 1 FROM "
                   "{{ changed_posture_keys() }} AS c WHERE c.workspace IS NOT DISTINCT FROM t.workspace "
                   "AND c.repository_uuid = t.repository_uuid) OR NOT EXISTS (SELECT 1 FROM "
                   "{{ ref('posture_check_digests') }} AS d WHERE d.workspace IS NOT DISTINCT FROM t.workspace "
                   "AND d.repository_uuid = t.repository_uuid){% endif %}") }}
-- depends_on: {{ ref('posture_check_digests') }}
WITH results AS (
    SELECT r.*, coalesce(r.repository_uuid, '') AS repository_key FROM {{ source('lake', 'posture_results') }} AS r
    {%- if is_incremental() %}
    -- only the rebuilt keys: every row below comes from these
    SEMI JOIN {{ changed_posture_keys() }} AS c
      ON c.workspace IS NOT DISTINCT FROM r.workspace AND c.repository_uuid = coalesce(r.repository_uuid, '')
    {%- endif %}
),

result_counts AS (
    -- how many results a check has per workspace and repository: the aggregate below (arg_max of a struct, list
    -- building) costs much more than copying the one row most checks have; the semi joins keep the scan's order
    SELECT workspace, repository_key, check_id, count(*) AS n
    FROM results
    GROUP BY ALL
),

single_results AS (
    SELECT r.*
    FROM results AS r
    SEMI JOIN result_counts AS k
      ON k.workspace IS NOT DISTINCT FROM r.workspace AND k.repository_key = r.repository_key
     AND k.check_id IS NOT DISTINCT FROM r.check_id AND k.n = 1
),

multiple_results AS (
    SELECT r.*
    FROM results AS r
    SEMI JOIN result_counts AS k
      ON k.workspace IS NOT DISTINCT FROM r.workspace AND k.repository_key = r.repository_key
     AND k.check_id IS NOT DISTINCT FROM r.check_id AND k.n > 1
),

chosen AS (
    -- a check usually has one result per repository (one connection): its values as they are, what the aggregate
    -- below gives for one row (arg_max of a NULL is NULL; list_distinct drops a NULL connection)
    SELECT workspace, repository_key, check_id, repository, status, evidence, finding_id,
           if(status IN ('pass', 'fail'), checked_at, NULL) AS evaluated_at,
           checked_at AS last_checked_at,
           if(connection IS NULL, [], [connection]) AS connections
    FROM single_results
    UNION ALL
    SELECT workspace, repository_key, check_id,
           arg_max(repository, (status IN ('pass', 'fail'), checked_at)) AS repository,
           arg_max(status, (status IN ('pass', 'fail'), checked_at)) AS status,
           arg_max(evidence, (status IN ('pass', 'fail'), checked_at)) AS evidence,
           arg_max(finding_id, (status IN ('pass', 'fail'), checked_at)) AS finding_id,
           max(checked_at) FILTER (WHERE status IN ('pass', 'fail')) AS evaluated_at,
           max(checked_at) AS last_checked_at,
           list_sort(list_distinct(list(connection))) AS connections
    FROM multiple_results
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
