-- Every scanner's findings, one row per fingerprint (finding_id): the same finding seen through two
-- connections, or reported twice, is one row. Each is mapped to an application: the most specific
-- monorepo child whose path glob matches the file, else its repository's application. Each also
-- gets its weakness family (cwe_families.yaml: by rule, else by CWE) and its code context: the first
-- rule of scanners/code_context.yaml that matches its path or file markers and covers its category
-- decides exclude (kept here, never in the open queue) or lower (the code_context severity factor).
-- depends: {{ scanner_inputs }}, application_mapping
-- depends: config_code_context_rules, config_cwe_families, config_cwe_family_rules
-- column: finding_id: stable fingerprint: hash of rule, repository, normalised path and content anchor
-- column: scanner: {{ scanner_names }}
-- column: scanner_version: tool and rules version that produced it
-- column: rule_id: the scanner's rule (or posture check BB-0xx)
-- column: title: what is wrong, in a line
-- column: category: secrets | sast | iac | sca | scm_posture | cicd_posture | external
-- column: base_severity: our per-rule severity before severity factors: info | low | medium | high | critical
-- column: connection: connection whose scan reported it (the latest scan when several did)
-- column: workspace: workspace slug
-- column: repository_uuid: repository {uuid} ('' for a workspace-level posture finding)
-- column: repository: repository slug
-- column: repository_full_name: workspace/slug (a slug alone is ambiguous: two workspaces may both have it)
-- column: commit: commit scanned
-- column: file_path: repository-relative path (null for settings)
-- column: start_line: first line (metadata: not part of the identity)
-- column: end_line: last line
-- column: evidence: what was seen, redacted (never a raw secret)
-- column: remediation: how to fix it
-- column: cwe: CWE id
-- column: package: vulnerable package (SCA)
-- column: version: its version
-- column: fixed_version: first version that fixes it
-- column: vulnerability_ids: advisory and CVE ids
-- column: controls: framework controls it fails (CIS-SSC-…, SSDF-…, CICD-SEC-…)
-- column: scanned_at: when the scan that reported it ran
-- column: cvss_score: CVSS base score of the advisory (SCA; null for other scanners)
-- column: cvss_vector: the CVSS vector it was scored from (v2, v3.x or v4)
-- column: known_exploited: in CISA's Known Exploited Vulnerabilities catalogue (null: no KEV data synced)
-- column: epss: FIRST's EPSS probability of exploitation in the next 30 days (null: no EPSS data)
-- column: application: application it belongs to
-- column: parent_application: when the application is a monorepo child, the whole repository's application
-- column: file_markers: content rules of code_context.yaml its file matched at scan time (e.g. generated-marker)
-- column: cwe_family: weakness family of its rule or CWE (cwe_families.yaml; null: none)
-- column: exploitable: its weakness family can be triggered through the application's inputs
-- column: code_context: vendored | minified | bundled | lock_file | generated | test | example (null: own code)
-- column: code_context_rule: the code_context.yaml rule that decided code_context
-- column: code_context_effect: exclude (never in the open queue) | lower (severity factor code_context) | none
WITH reported AS NOT MATERIALIZED (
    -- every scanner of ox_bb_pipeline/scanners/registry.py (findings_union_sql), substituted when read
    {{ findings_union }}
),

duplicated AS (
    SELECT finding_id FROM reported GROUP BY finding_id HAVING count(*) > 1
),

unique_findings AS (
    -- only the few findings reported more than once need choosing: the latest scan's row
    SELECT * FROM reported ANTI JOIN duplicated USING (finding_id)
    UNION ALL
    SELECT * FROM reported SEMI JOIN duplicated USING (finding_id)
    QUALIFY row_number() OVER (PARTITION BY finding_id ORDER BY scanned_at DESC NULLS LAST, connection) = 1
),

repository_applications AS (
    -- per repository: its application, and its monorepo children, most specific glob first
    SELECT repository_uuid,
           any_value(application) FILTER (WHERE NOT is_monorepo_child) AS application,
           list({'path_glob': path_glob, 'application': application, 'parent_application': parent_application}
                ORDER BY path_specificity DESC, length(path_glob) DESC, application)
               FILTER (WHERE is_monorepo_child) AS children
    FROM application_mapping
    GROUP BY repository_uuid
),

mapped AS (
    SELECT f.*, m.application AS whole_application,
           list_filter(m.children, lambda c: f.file_path GLOB c.path_glob)[1] AS child
    FROM unique_findings AS f
    LEFT JOIN repository_applications AS m USING (repository_uuid)
),

contexts AS (
    -- a rule that matches but does not cover the category still names what the file is (effect none)
    -- code_context_matches: the macro the runner makes from the rules (constant patterns, compiled once)
    SELECT f.finding_id, r.name AS rule, r.context,
           CASE WHEN list_contains(r.categories, f.category) THEN r.decision ELSE 'none' END AS effect
    FROM unique_findings AS f, unnest(code_context_matches(f.file_path, coalesce(f.file_markers, []))) AS m(hit)
    JOIN config_code_context_rules AS r ON r.name = m.hit.rule
    QUALIFY row_number() OVER (PARTITION BY f.finding_id
                               ORDER BY list_contains(r.categories, f.category) DESC, r.rule_order) = 1
),

families AS (
    SELECT f.finding_id, coalesce(byrule.family, bycwe.family) AS family
    FROM unique_findings AS f
    LEFT JOIN config_cwe_family_rules AS byrule ON byrule.scanner = f.scanner AND byrule.rule_id = f.rule_id
    LEFT JOIN config_cwe_families AS bycwe ON bycwe.cwe = f.cwe
)

SELECT
    finding_id, scanner, scanner_version, rule_id, title, category, base_severity,
    connection, workspace, repository_uuid, repository, workspace || '/' || repository AS repository_full_name,
    commit, file_path,
    start_line, end_line, evidence, remediation, cwe, package, version, fixed_version,
    vulnerability_ids, controls, scanned_at, cvss_score, cvss_vector, known_exploited, epss,
    coalesce(child.application, whole_application,
             CASE WHEN repository_uuid = '' THEN 'workspace:' || workspace
                  ELSE workspace || '/' || repository END) AS application,
    child.parent_application,
    coalesce(file_markers, []) AS file_markers,
    w.family AS cwe_family,
    coalesce(e.exploitable, false) AS exploitable,
    c.context AS code_context,
    c.rule AS code_context_rule,
    coalesce(c.effect, 'none') AS code_context_effect
FROM mapped
LEFT JOIN contexts AS c USING (finding_id)
LEFT JOIN families AS w USING (finding_id)
LEFT JOIN (SELECT DISTINCT family, exploitable FROM config_cwe_families) AS e ON e.family = w.family
