-- The conditions severity factors test, with their evidence: one row per subject and condition that
-- holds. A condition is a fact about a repository (public, deploys to production, inactive…), an
-- application (business priority) or a single finding (test path, dev-only package, fix available);
-- evaluating each at its own level keeps the work proportional to repositories, not findings.
-- config_severity_factors (the catalog) decides what each condition does to the severity.
-- depends: findings, repositories, applications, components, raw_pipeline_variables, build_context
-- column: scope: repository | application | finding: what the condition is about
-- column: subject: the repository_uuid, application name or finding_id
-- column: condition: condition id (settings.CONDITIONS)
-- column: evidence: what shows the condition holds (a path, a repository, an environment, days, keys)
-- column: categories: finding categories the condition applies to (null: every category)
WITH ctx AS (
    SELECT * FROM build_context
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
    SELECT finding_id, file_path,
           nullif(regexp_extract(file_path,
               '(?i)^(.*?(?:^|/)(?:tests?|__tests__|testdata|test-data|fixtures?|examples|samples|specs?|mocks?|__mocks__|demos?)/(?:(?:tests?|__tests__|testdata|test-data|fixtures?|examples|samples|specs?|mocks?|__mocks__|demos?)/)*)', 1), '') AS test_directory
    FROM findings
    WHERE regexp_matches(file_path, '(?i)(^|/)(tests?|__tests__|testdata|test-data|fixtures?|examples|samples|specs?|mocks?|__mocks__|demos?)/')
       OR regexp_matches(file_path,
              '(^|/)(test_[^/]*\.py|[^/]*_test\.(py|go)|[^/]*\.(test|spec)\.[cm]?[jt]sx?|[^/]*Tests?\.(java|kt|cs))$')
)

SELECT 'repository' AS scope, repository_uuid AS subject, 'public_repository' AS condition,
       full_name AS evidence, NULL::VARCHAR[] AS categories
FROM repositories WHERE is_public

UNION ALL
SELECT 'repository' AS scope, repository_uuid AS subject, 'production_deployment' AS condition,
       production_evidence AS evidence, NULL AS categories
FROM repositories WHERE deploys_to_production

UNION ALL
SELECT 'repository' AS scope, repository_uuid AS subject, 'not_deployed_to_production' AS condition,
       array_to_string(deployments, ', ') AS evidence, NULL AS categories
FROM repositories WHERE NOT deploys_to_production AND len(deployments) > 0

UNION ALL
SELECT 'repository' AS scope, repository_uuid AS subject, 'inactive_repository' AS condition,
       days_since_code_change || ' days' AS evidence, NULL AS categories
FROM repositories, ctx WHERE days_since_code_change > ctx.inactive_after_days

UNION ALL
SELECT 'repository' AS scope, repository_uuid AS subject, 'unsecured_variable' AS condition,
       keys AS evidence, ['secrets', 'cicd_posture'] AS categories
FROM unsecured_variables

UNION ALL
SELECT 'application' AS scope, application AS subject, 'business_priority_critical' AS condition,
       array_to_string(business_priority_reasons, ', ') AS evidence, NULL AS categories
FROM applications WHERE business_priority = 'critical'

UNION ALL
SELECT 'application' AS scope, application AS subject, 'business_priority_low' AS condition,
       array_to_string(business_priority_reasons, ', ') AS evidence, NULL AS categories
FROM applications WHERE business_priority = 'low'

UNION ALL
SELECT 'finding' AS scope, finding_id AS subject, 'test_path' AS condition,
       coalesce(test_directory, file_path) AS evidence, NULL AS categories
FROM test_paths

UNION ALL
SELECT 'finding' AS scope, f.finding_id AS subject, 'dev_dependency' AS condition,
       f.package || '@' || f.version AS evidence, NULL AS categories
FROM findings AS f
JOIN dev_only_packages AS d
    ON d.repository_uuid = f.repository_uuid AND d.name = f.package AND d.version = f.version
WHERE f.category = 'sca'

UNION ALL
SELECT 'finding' AS scope, finding_id AS subject, 'fix_available' AS condition,
       package || ' to ' || fixed_version AS evidence, NULL AS categories
FROM findings WHERE fixed_version IS NOT NULL AND fixed_version <> ''

UNION ALL
SELECT 'finding' AS scope, finding_id AS subject, 'known_exploited' AS condition,
       coalesce(nullif(array_to_string(list_filter(vulnerability_ids, lambda v: v LIKE 'CVE-%'), ', '), ''), rule_id)
           AS evidence, ['sca'] AS categories
FROM findings WHERE known_exploited

UNION ALL
SELECT 'finding' AS scope, finding_id AS subject, 'epss_high' AS condition,
       format('{:.2f}', epss) AS evidence, ['sca'] AS categories
FROM findings WHERE epss >= 0.5
