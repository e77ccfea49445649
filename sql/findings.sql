-- Every scanner's findings, one row per fingerprint (finding_id): the same finding seen through two
-- connections, or reported twice, is one row. Each is mapped to an application: the most specific
-- monorepo child whose path glob matches the file, else its repository's application.
-- depends: findings_secrets, findings_bandit, findings_semgrep, findings_checkov, findings_sca
-- depends: findings_posture, findings_sarif, application_mapping
-- column: finding_id: stable fingerprint: hash of rule, repository, normalised path and content anchor
-- column: scanner: secrets | bandit | semgrep | checkov | sca | posture | sarif
-- column: scanner_version: tool and rules version that produced it
-- column: rule_id: the scanner's rule (or posture check BB-0xx)
-- column: title: what is wrong, in a line
-- column: category: secrets | sast | iac | sca | scm_posture | cicd_posture | external
-- column: base_severity: our per-rule severity before severity factors: info | low | medium | high | critical
-- column: connection: connection whose scan reported it (the latest scan when several did)
-- column: workspace: workspace slug
-- column: repository_uuid: repository {uuid} ('' for a workspace-level posture finding)
-- column: repository: repository slug
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
-- column: application: application it belongs to
-- column: parent_application: when the application is a monorepo child, the whole repository's application
WITH reported AS (
    SELECT * FROM findings_secrets
    UNION ALL BY NAME SELECT * FROM findings_bandit
    UNION ALL BY NAME SELECT * FROM findings_semgrep
    UNION ALL BY NAME SELECT * FROM findings_checkov
    UNION ALL BY NAME SELECT * FROM findings_sca
    UNION ALL BY NAME SELECT * FROM findings_posture
    UNION ALL BY NAME SELECT * FROM findings_sarif
),

unique_findings AS (
    SELECT *
    FROM reported
    QUALIFY row_number() OVER (PARTITION BY finding_id ORDER BY scanned_at DESC NULLS LAST, connection) = 1
),

whole AS (
    SELECT repository_uuid, application
    FROM application_mapping
    WHERE NOT is_monorepo_child
),

child AS (
    SELECT f.finding_id, m.application, m.parent_application
    FROM unique_findings AS f
    JOIN application_mapping AS m
        ON m.is_monorepo_child
        AND m.repository_uuid = f.repository_uuid
        AND f.file_path GLOB m.path_glob
    QUALIFY row_number() OVER (PARTITION BY f.finding_id
                               ORDER BY m.path_specificity DESC, length(m.path_glob) DESC, m.application) = 1
)

SELECT
    f.finding_id, f.scanner, f.scanner_version, f.rule_id, f.title, f.category, f.base_severity,
    f.connection, f.workspace, f.repository_uuid, f.repository, f.commit, f.file_path,
    f.start_line, f.end_line, f.evidence, f.remediation, f.cwe, f.package, f.version, f.fixed_version,
    f.vulnerability_ids, f.controls, f.scanned_at,
    coalesce(c.application, w.application,
             CASE WHEN f.repository_uuid = '' THEN 'workspace:' || f.workspace
                  ELSE f.workspace || '/' || f.repository END) AS application,
    c.parent_application
FROM unique_findings AS f
LEFT JOIN child AS c USING (finding_id)
LEFT JOIN whole AS w USING (repository_uuid)
