-- The conditions severity factors test, evaluated for every finding: one row per finding and
-- condition that holds, with the evidence. config_severity_factors (the catalog) decides what each
-- condition does to the severity; this model only establishes facts.
-- depends: findings, repositories, applications, components, raw_pipeline_variables, build_context
-- column: finding_id: the finding
-- column: condition: condition id (settings.CONDITIONS)
-- column: evidence: what shows the condition holds (a path, a repository, an environment, days, keys)
WITH ctx AS (
    SELECT * FROM build_context
),

f AS (
    SELECT f.finding_id, f.category, f.repository_uuid, f.workspace, f.file_path, f.package, f.version,
           f.fixed_version, f.application,
           r.full_name, r.is_public, r.deploys_to_production, r.production_evidence, r.deployments,
           r.days_since_code_change
    FROM findings AS f
    LEFT JOIN repositories AS r USING (repository_uuid)
),

dev_only_packages AS (
    -- dev-only only when every occurrence of the package version in the repository is dev-only
    SELECT repository_uuid, name, version
    FROM components
    GROUP BY ALL
    HAVING bool_and(dev_only)
),

unsecured_variables AS (
    -- repository and deployment variables, and workspace variables every repository inherits
    SELECT repository_uuid, string_agg(DISTINCT key, ', ' ORDER BY key) AS keys
    FROM (
        SELECT v.repository_uuid, v.key
        FROM raw_pipeline_variables AS v
        WHERE v.repository_uuid IS NOT NULL AND v.secured IS FALSE AND v.value_looks_secret
        UNION ALL
        SELECT r.repository_uuid, v.key
        FROM raw_pipeline_variables AS v
        JOIN repositories AS r ON r.workspace = v.workspace
        WHERE v.repository_uuid IS NULL AND v.secured IS FALSE AND v.value_looks_secret
    )
    GROUP BY ALL
),

test_paths AS (
    -- evidence: the path up to the first test-like directory and any test-like directories right
    -- after it (tests/fixtures/), else the test file itself
    SELECT finding_id,
           nullif(regexp_extract(file_path,
               '(?i)^(.*?(?:^|/)(?:tests?|__tests__|testdata|test-data|fixtures?|examples|samples|specs?|mocks?|__mocks__|demos?)/(?:(?:tests?|__tests__|testdata|test-data|fixtures?|examples|samples|specs?|mocks?|__mocks__|demos?)/)*)', 1), '') AS test_directory
    FROM f
    WHERE regexp_matches(file_path, '(?i)(^|/)(tests?|__tests__|testdata|test-data|fixtures?|examples|samples|specs?|mocks?|__mocks__|demos?)/')
       OR regexp_matches(file_path,
              '(^|/)(test_[^/]*\.py|[^/]*_test\.(py|go)|[^/]*\.(test|spec)\.[cm]?[jt]sx?|[^/]*Tests?\.(java|kt|cs))$')
)

SELECT finding_id, 'public_repository' AS condition, full_name AS evidence
FROM f WHERE is_public

UNION ALL
SELECT finding_id, 'production_deployment', production_evidence
FROM f WHERE deploys_to_production

UNION ALL
SELECT finding_id, 'not_deployed_to_production', array_to_string(deployments, ', ')
FROM f WHERE NOT deploys_to_production AND len(deployments) > 0

UNION ALL
SELECT f.finding_id, 'business_priority_critical', array_to_string(a.business_priority_reasons, ', ')
FROM f JOIN applications AS a USING (application) WHERE a.business_priority = 'critical'

UNION ALL
SELECT f.finding_id, 'business_priority_low', array_to_string(a.business_priority_reasons, ', ')
FROM f JOIN applications AS a USING (application) WHERE a.business_priority = 'low'

UNION ALL
SELECT t.finding_id, 'test_path', coalesce(t.test_directory, f.file_path)
FROM test_paths AS t JOIN f USING (finding_id)

UNION ALL
SELECT f.finding_id, 'dev_dependency', f.package || '@' || f.version
FROM f
JOIN dev_only_packages AS d
    ON d.repository_uuid = f.repository_uuid AND d.name = f.package AND d.version = f.version
WHERE f.category = 'sca'

UNION ALL
SELECT finding_id, 'fix_available', package || ' to ' || fixed_version
FROM f WHERE fixed_version IS NOT NULL AND fixed_version <> ''

UNION ALL
SELECT f.finding_id, 'inactive_repository', f.days_since_code_change || ' days'
FROM f, ctx WHERE f.days_since_code_change > ctx.inactive_after_days

UNION ALL
SELECT f.finding_id, 'unsecured_variable', u.keys
FROM f JOIN unsecured_variables AS u USING (repository_uuid)
WHERE f.category IN ('secrets', 'cicd_posture')
