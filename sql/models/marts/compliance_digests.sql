-- What each application's compliance_report rows are computed from, as one digest per application: its row of
-- applications, its repositories (application_mapping), the posture results and scan runs that count for it (a
-- workspace-level result for every application of the workspace), the open and suppressed findings that count for
-- it (a file's for its application, a repository's or workspace's setting for each of theirs), and what applies to
-- all (the controls: catalogs, frameworks, the controls findings carry; the model's SQL). compliance_report rebuilds
-- exactly the applications whose digest differs from the last build's.
WITH app_repos AS (
    SELECT DISTINCT application, repository_uuid, workspace, full_name
    FROM {{ ref('application_mapping') }}
),

inputs AS (
    SELECT application, hash(application, is_relevant)::HUGEINT AS h FROM {{ ref('applications') }}
    UNION ALL
    SELECT application, hash(repository_uuid, workspace, full_name)::HUGEINT AS h FROM app_repos
    UNION ALL
    SELECT ar.application, hash(pr.check_id, pr.status, pr.workspace, pr.repository, pr.evidence)::HUGEINT AS h
    FROM {{ source('lake', 'posture_results') }} AS pr JOIN app_repos AS ar USING (repository_uuid)
    UNION ALL
    SELECT ar.application, hash(pr.check_id, pr.status, pr.workspace, pr.repository, pr.evidence)::HUGEINT AS h
    FROM {{ source('lake', 'posture_results') }} AS pr JOIN app_repos AS ar USING (workspace)
    WHERE pr.repository_uuid IS NULL
    UNION ALL
    SELECT ar.application, hash(s.scanner, s.status, s.error)::HUGEINT AS h
    FROM {{ source('lake', 'scan_runs') }} AS s JOIN app_repos AS ar USING (repository_uuid)
    UNION ALL
    -- the open findings' hashes, summed per repository beforehand (compliance_finding_digests: a sum of sums)
    SELECT application, h FROM {{ ref('compliance_finding_digests') }} WHERE in_file
    UNION ALL
    SELECT ar.application, o.h
    FROM {{ ref('compliance_finding_digests') }} AS o JOIN app_repos AS ar USING (repository_uuid)
    WHERE NOT o.in_file AND o.repository_uuid <> ''
    UNION ALL
    SELECT ar.application, o.h
    FROM {{ ref('compliance_finding_digests') }} AS o JOIN app_repos AS ar USING (workspace)
    WHERE NOT o.in_file AND o.repository_uuid = ''
),

finding_controls AS (
    SELECT DISTINCT scanner, control_id FROM {{ ref('repository_controls') }}
),

shared AS (
    SELECT hash('{{ local_md5(graph.nodes["model.ox_bb_warehouse.compliance_report"].raw_code if execute else "") }}',
                (SELECT sum(hash(c)::HUGEINT) FROM finding_controls AS c),
                (SELECT sum(hash(c)::HUGEINT) FROM {{ invoker_input('config_posture_checks') }} AS c),
                (SELECT sum(hash(c)::HUGEINT) FROM {{ invoker_input('config_scanner_controls') }} AS c),
                (SELECT sum(hash(c)::HUGEINT) FROM {{ invoker_input('config_frameworks') }} AS c))
               AS shared_digest
)

SELECT a.application, hash(sum(i.h), s.shared_digest) AS digest
FROM {{ ref('applications') }} AS a
JOIN inputs AS i USING (application)
CROSS JOIN shared AS s
GROUP BY a.application, s.shared_digest
