-- What the severity rows of each repository's findings are computed from, as one digest per repository: its
-- findings (findings_repository_digests), its repository-level severity evidence (inactive_repository's daily
-- "N days" left out: the finding_severities view fills it in), the evidence and the application columns of the
-- applications its findings belong to, its findings' own evidence and set_severity decisions, and what applies
-- to all (the factor catalog, the severity levels, the base model's SQL). finding_severities_base rebuilds
-- exactly the repositories whose digest differs from the last build's.
WITH evidence AS (
    SELECT scope, subject, condition,
           CASE WHEN condition = 'inactive_repository' THEN NULL ELSE evidence END AS evidence, repository_uuid
    FROM {{ ref('severity_evidence') }}
),

repository_inputs AS (
    SELECT subject AS repository_uuid, sum(hash(condition, evidence)::HUGEINT) AS h
    FROM evidence
    WHERE scope = 'repository'
    GROUP BY ALL
),

application_inputs AS (
    SELECT application, sum(h) AS h
    FROM (
        SELECT subject AS application, hash(condition, evidence)::HUGEINT AS h FROM evidence WHERE scope = 'application'
        UNION ALL
        SELECT application, hash(team, owners, business_priority, is_relevant)::HUGEINT AS h
        FROM {{ ref('applications') }}
    )
    GROUP BY ALL
),

repository_applications AS (
    SELECT r.repository_uuid, sum(hash(r.application, a.h)::HUGEINT) AS h
    FROM (SELECT DISTINCT repository_uuid, application FROM {{ ref('findings') }}) AS r
    LEFT JOIN application_inputs AS a USING (application)
    GROUP BY ALL
),

finding_inputs AS (
    -- a finding's evidence carries its repository (read from the same findings row, finding_id being unique): the
    -- same rows and sums as a join with findings, without its scan; a repository without findings_repository_digests
    -- row still adds nothing (the LEFT JOINs below start from there)
    SELECT repository_uuid, sum(hash(subject, condition, evidence)::HUGEINT) AS h
    FROM evidence
    WHERE scope = 'finding'
    GROUP BY ALL
),

decisions AS (
    SELECT f.repository_uuid, sum(hash(d.finding_id, d.rule, d.new, d.reason, d.decided_at)::HUGEINT) AS h
    FROM {{ invoker_input('workflow_decisions') }} AS d
    JOIN {{ ref('findings') }} AS f USING (finding_id)
    WHERE d.field = 'final_severity'
    GROUP BY ALL
),

shared AS (
    SELECT hash('{{ local_md5(graph.nodes["model.ox_bb_warehouse.finding_severities_base"].raw_code
                              if execute else "") }}',
                (SELECT sum(hash(c)::HUGEINT) FROM {{ invoker_input('config_severity_factors') }} AS c),
                (SELECT sum(hash(c)::HUGEINT) FROM {{ invoker_input('config_severity_levels') }} AS c))
               AS shared_digest
)

SELECT d.repository_uuid,
       hash(d.digest, r.h, a.h, f.h, w.h, s.shared_digest) AS digest
FROM {{ ref('findings_repository_digests') }} AS d
LEFT JOIN repository_inputs AS r USING (repository_uuid)
LEFT JOIN repository_applications AS a USING (repository_uuid)
LEFT JOIN finding_inputs AS f USING (repository_uuid)
LEFT JOIN decisions AS w USING (repository_uuid)
CROSS JOIN shared AS s
