-- What the finding rows of severity_evidence are computed from, as one digest per repository: its findings
-- (findings_repository_digests: they change exactly when the findings model rebuilds the repository's rows), what
-- they read of its lake components (each package version's dev_only; a row without one decides nothing), and what
-- applies to all (the code context rules, from which the runner makes code_context_matches, and severity_evidence's
-- SQL). severity_evidence computes again the finding rows of exactly the repositories whose digest differs from the
-- last build's. Reading every component costs ~0.01 s at 300k components.
WITH components AS (
    SELECT repository_uuid, sum(hash(name, version, dev_only)::HUGEINT) AS h
    FROM {{ source('lake', 'components') }}
    WHERE dev_only IS NOT NULL
    GROUP BY ALL
),

shared AS (
    SELECT hash({{ model_sql_digest('severity_evidence') }},
                (SELECT sum(hash(c)::HUGEINT) FROM {{ invoker_input('config_code_context_rules') }} AS c))
               AS shared_digest
)

SELECT d.repository_uuid, hash(d.digest, c.h, s.shared_digest) AS digest
FROM {{ ref('findings_repository_digests') }} AS d
LEFT JOIN components AS c USING (repository_uuid)
CROSS JOIN shared AS s
