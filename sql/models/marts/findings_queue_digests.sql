-- What each repository's findings_queue rows are computed from besides their own last state, as one digest per
-- repository: its findings and their severity rows (the digests of findings and finding_severities_base), how
-- completely it was scanned (scan runs, posture checks), and what applies to all (the correlation window, the
-- suppressions with whether each is in force today, findings_queue_base's SQL). findings_queue_base recomputes the
-- repositories whose digest differs from the last build's. Every repository ever seen keeps a row (a gone one must
-- resolve its findings once). The row also keeps what the last build's findings_queue showed that the base does
-- not store: the build's now (last_seen of seen findings) and today's inactive_repository evidence, and the build's
-- number (which base rows this build computed).
WITH ctx AS (
    SELECT * FROM {{ invoker_input('build_context') }}
),

code_scopes AS (
    SELECT repository_uuid, sum(hash(scanner, complete)::HUGEINT) AS h
    FROM (SELECT repository_uuid, scanner, bool_or(status = 'ok') AS complete
          FROM {{ source('lake', 'scan_runs') }}
          GROUP BY ALL)
    GROUP BY ALL
),

posture_scopes AS (
    SELECT repository_uuid, sum(hash(workspace, check_id, complete)::HUGEINT) AS h
    FROM (SELECT workspace, coalesce(repository_uuid, '') AS repository_uuid, check_id,
                 bool_or(status IN ('pass', 'fail')) AS complete
          FROM {{ source('lake', 'posture_results') }}
          GROUP BY ALL)
    GROUP BY ALL
),

inactive AS (
    SELECT subject AS repository_uuid, evidence
    FROM {{ ref('severity_evidence') }}
    WHERE scope = 'repository' AND condition = 'inactive_repository'
),

repositories AS (
    SELECT repository_uuid FROM {{ ref('findings_repository_digests') }}
    UNION SELECT repository_uuid FROM code_scopes
    UNION SELECT repository_uuid FROM posture_scopes
    UNION SELECT repository_uuid FROM {{ invoker_input('previous_findings_queue_digests') }}
),

shared AS (
    SELECT hash('{{ local_md5(graph.nodes["model.ox_bb_warehouse.findings_queue_base"].raw_code
                              if execute else "") }}',
                (SELECT correlation_line_window FROM ctx),
                (SELECT sum(hash(s, s.expires >= CAST(ctx.now AS DATE))::HUGEINT)
                 FROM {{ invoker_input('config_suppressions') }} AS s, ctx)) AS shared_digest
)

SELECT r.repository_uuid,
       hash(f.digest, v.digest, c.h, p.h, s.shared_digest) AS digest,
       hash(c.h, p.h, s.shared_digest) AS scope_digest,
       i.evidence AS inactive_evidence,
       ctx.now AS built_at,
       coalesce((SELECT max(build_number) FROM {{ invoker_input('previous_findings_queue_digests') }}), 0) + 1
           AS build_number
FROM repositories AS r
LEFT JOIN {{ ref('findings_repository_digests') }} AS f USING (repository_uuid)
LEFT JOIN {{ ref('finding_severity_digests') }} AS v USING (repository_uuid)
LEFT JOIN code_scopes AS c USING (repository_uuid)
LEFT JOIN posture_scopes AS p USING (repository_uuid)
LEFT JOIN inactive AS i USING (repository_uuid)
CROSS JOIN shared AS s
CROSS JOIN ctx
