{#- Incremental by repository: a build deletes and computes again every repository and application row (few; the
    inactive_repository row's "N days" moves daily), and the finding rows of the repositories whose digest changed
    (severity_evidence_digests: their findings, components, the code context rules or this SQL; macro
    changed_evidence_repositories), gone ones included (their digest is gone). The first build, and every build after
    a change of the rules or of this SQL, computes them all; so does a build without the last build's digests (a
    warehouse from before this model was incremental): its finding rows are all deleted (macro
    severity_evidence_delete). -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='sync_all_columns',
          pre_hook="{% if is_incremental() %}{{ severity_evidence_delete() }}{% endif %}") }}
-- depends_on: {{ ref('severity_evidence_digests') }}
WITH ctx AS (
    SELECT * FROM {{ invoker_input('build_context') }}
),

findings_in_scope AS {{ "MATERIALIZED" if is_incremental() else "NOT MATERIALIZED" }} (
    -- the findings whose rows this build computes: all of them in a full build (each branch below scans findings with
    -- its own filter, cheaper than a materialised copy of them all), else those of the repositories it computes again,
    -- kept once. Taken by rowid: on a steady night they are the rows the findings model appended in this build, the
    -- table's last row groups, and DuckDB skips the others by their rowid range; a filter on repository_uuid alone
    -- reads every column of every row group (the rebuilt repositories' rows are in each): ~0.05 s more at 1M findings
    SELECT finding_id, repository_uuid, file_path, file_markers, code_context, code_context_rule, code_context_effect,
           category, package, version, fixed_version, known_exploited, vulnerability_ids, rule_id, validity, epss
    FROM {{ ref('findings') }}
    {%- if is_incremental() %}
    WHERE rowid IN (SELECT rowid FROM {{ ref('findings') }} WHERE repository_uuid IN {{ changed_evidence_repositories() }})
    {%- endif %}
),

lowering_contexts AS (
    -- evidence: the directory a directory rule matched (tests/fixtures/), else the file; a content
    -- rule adds its name (code_context_matches: the runner's macro over code_context.yaml)
    SELECT f.finding_id, f.repository_uuid, f.file_path, r.name AS rule, r.content IS NOT NULL AS by_content,
           replace(f.code_context, '_', ' ') AS context,
           ltrim([m.matched FOR m IN code_context_matches(f.file_path, f.file_markers)
                  IF m.rule = f.code_context_rule][1], '/') AS matched
    FROM findings_in_scope AS f
    JOIN {{ invoker_input('config_code_context_rules') }} AS r ON r.name = f.code_context_rule
    WHERE f.code_context_effect = 'lower'
)

-- repository_uuid: the repository a row is about (a finding's own, read from the same findings row), NULL for an
-- application; the severity digests and the base model take a repository's evidence by it without reading findings
SELECT 'repository' AS scope, repository_uuid AS subject, 'public_repository' AS condition,
       full_name AS evidence, repository_uuid
FROM {{ ref('repositories') }} WHERE is_public

UNION ALL
SELECT 'repository' AS scope, repository_uuid AS subject, 'production_deployment' AS condition,
       production_evidence AS evidence, repository_uuid
FROM {{ ref('repositories') }} WHERE deploys_to_production

UNION ALL
SELECT 'repository' AS scope, repository_uuid AS subject, 'not_deployed_to_production' AS condition,
       array_to_string(deployments, ', ') AS evidence, repository_uuid
FROM {{ ref('repositories') }} WHERE NOT deploys_to_production AND len(deployments) > 0

UNION ALL
SELECT 'repository' AS scope, repository_uuid AS subject, 'inactive_repository' AS condition,
       days_since_code_change || ' days' AS evidence, repository_uuid
FROM {{ ref('repositories') }}, ctx WHERE days_since_code_change > ctx.inactive_after_days

UNION ALL
SELECT 'application' AS scope, application AS subject, 'business_priority_critical' AS condition,
       array_to_string(business_priority_reasons, ', ') AS evidence, NULL::VARCHAR AS repository_uuid
FROM {{ ref('applications') }}
-- a computed priority that counts production deployment would count that fact a second time
WHERE business_priority = 'critical' AND (business_priority_source = 'override' OR NOT deploys_to_production)

UNION ALL
SELECT 'application' AS scope, application AS subject, 'business_priority_low' AS condition,
       array_to_string(business_priority_reasons, ', ') AS evidence, NULL::VARCHAR AS repository_uuid
FROM {{ ref('applications') }} WHERE business_priority = 'low'

UNION ALL
SELECT 'finding' AS scope, finding_id AS subject, 'code_context_lower' AS condition,
       context || ' code ' || CASE WHEN matched LIKE '%/' THEN 'under ' || matched ELSE file_path END
       || CASE WHEN by_content THEN ' (' || rule || ')' ELSE '' END AS evidence, repository_uuid
FROM lowering_contexts

UNION ALL
-- dev-only only when every occurrence of the package version in the repository is dev-only: one is and none is
-- not (a NULL dev_only neither, as bool_and skips it); two semi-joins cost less than grouping every component
SELECT 'finding' AS scope, f.finding_id AS subject, 'dev_dependency' AS condition,
       f.package || '@' || f.version AS evidence, f.repository_uuid
FROM findings_in_scope AS f
WHERE f.category = 'sca'
    AND EXISTS (SELECT 1 FROM {{ source('lake', 'components') }} AS c
                WHERE c.dev_only
                AND c.repository_uuid = f.repository_uuid AND c.name = f.package AND c.version = f.version)
    AND NOT EXISTS (SELECT 1 FROM {{ source('lake', 'components') }} AS c
                    WHERE NOT c.dev_only
                    AND c.repository_uuid = f.repository_uuid AND c.name = f.package AND c.version = f.version)

UNION ALL
SELECT 'finding' AS scope, finding_id AS subject, 'fix_available' AS condition,
       package || ' to ' || fixed_version AS evidence, repository_uuid
FROM findings_in_scope WHERE fixed_version IS NOT NULL AND fixed_version <> ''

UNION ALL
SELECT 'finding' AS scope, finding_id AS subject, 'known_exploited' AS condition,
       coalesce(nullif(array_to_string(list_filter(vulnerability_ids, lambda v: v LIKE 'CVE-%'), ', '), ''), rule_id)
           AS evidence, repository_uuid
FROM findings_in_scope WHERE known_exploited

UNION ALL
SELECT 'finding' AS scope, finding_id AS subject, 'active_credential' AS condition,
       rule_id AS evidence, repository_uuid
FROM findings_in_scope WHERE validity = 'active'

UNION ALL
SELECT 'finding' AS scope, finding_id AS subject, 'epss_high' AS condition,
       format('{:.2f}', epss) AS evidence, repository_uuid
FROM findings_in_scope WHERE epss >= 0.5
