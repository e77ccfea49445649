-- What the posture_checks rows of each workspace and repository ('' for the workspace-level checks) are computed
-- from, as one digest per key: its rows in posture_results, its rows of application_mapping (a repository's
-- application), and what applies to all (the check catalog and posture_checks' SQL). posture_checks rebuilds exactly
-- the keys whose digest differs from the last build's, and drops those that are gone.
WITH inputs AS (
    SELECT workspace, coalesce(repository_uuid, '') AS repository_uuid,
           sum(hash(r)::HUGEINT) AS input_digest, count(*) AS input_rows
    FROM {{ source('lake', 'posture_results') }} AS r
    GROUP BY ALL
),

mapping AS (
    SELECT repository_uuid, sum(hash(m)::HUGEINT) AS mapping_digest, count(*) AS mapping_rows
    FROM {{ ref('application_mapping') }} AS m
    WHERE NOT is_monorepo_child
    GROUP BY repository_uuid
),

shared AS (
    SELECT hash('{{ local_md5(graph.nodes["model.ox_bb_warehouse.posture_checks"].raw_code if execute else "") }}',
                (SELECT sum(hash(c)::HUGEINT) FROM {{ invoker_input('config_posture_checks') }} AS c))
               AS shared_digest
)

SELECT i.workspace, i.repository_uuid,
       hash(i.input_digest, i.input_rows, m.mapping_digest, m.mapping_rows, s.shared_digest) AS digest
FROM inputs AS i
LEFT JOIN mapping AS m USING (repository_uuid)
CROSS JOIN shared AS s
