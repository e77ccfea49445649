-- Findings with their final severity: the base severity moved by every severity factor whose
-- condition holds (config_severity_factors, in catalog order), the factors with their evidence, and
-- one sentence that explains the result, e.g. "Critical → High: only under tests/fixtures/;
-- application not deployed to production". Every change is explained; nothing changes silently.
-- It joins findings with finding_severities (where the severity is decided and explained,
-- including a workflow's set_severity), so the finding's wide columns are stored once.
-- materialized: view
-- depends: findings, finding_severities
-- column: finding_id: stable fingerprint
-- column: scanner: scanner that reported it
-- column: scanner_version: tool and rules version
-- column: rule_id: the scanner's rule
-- column: title: what is wrong
-- column: category: secrets | sast | iac | sca | scm_posture | cicd_posture | external
-- column: base_severity: the rule's own severity
-- column: connection: connection whose scan reported it
-- column: workspace: workspace slug
-- column: repository_uuid: repository {uuid}
-- column: repository: repository slug
-- column: repository_full_name: workspace/slug (a slug alone is ambiguous: two workspaces may both have it)
-- column: commit: commit scanned
-- column: file_path: repository-relative path
-- column: start_line: first line
-- column: end_line: last line
-- column: evidence: what was seen, redacted
-- column: remediation: how to fix it
-- column: cwe: CWE id
-- column: package: vulnerable package (SCA)
-- column: version: its version
-- column: fixed_version: first fixed version
-- column: vulnerability_ids: advisory and CVE ids
-- column: controls: framework controls it fails
-- column: scanned_at: when the scan ran
-- column: application: application it belongs to
-- column: parent_application: for a monorepo child, the whole repository's application
-- column: file_markers: code_context.yaml content rules its file matched at scan time
-- column: cwe_family: weakness family of its rule or CWE (cwe_families.yaml)
-- column: exploitable: its weakness family can be triggered through the application's inputs
-- column: code_context: vendored | minified | bundled | lock_file | generated | test | example (null: own code)
-- column: code_context_rule: the code_context.yaml rule that decided code_context
-- column: code_context_effect: exclude (never in the open queue) | lower (severity factor code_context) | none
-- column: team: the application's team
-- column: owners: the application's owners
-- column: business_priority: the application's business priority
-- column: application_is_relevant: false when the application is irrelevant (the finding stays, flagged)
-- column: severity_steps: net levels the factors moved the severity (before keeping it within low..critical)
-- column: final_severity: severity after the factors and any workflow decision: info | low | medium | high | critical
-- column: severity_rank: final severity as a number, 0 (info) to 4 (critical), for sorting
-- column: severity_factors: factors that apply, in order: {name, direction (up|down|explain), steps, evidence}; a workflow decision last
-- column: severity_explanation: one sentence: how the base severity became the final one, and why
-- column: severity_set_by_rule: the workflow rule whose set_severity decided the final severity (null: the factors did)
SELECT
    f.finding_id, f.scanner, f.scanner_version, f.rule_id, f.title, f.category, f.base_severity,
    f.connection, f.workspace, f.repository_uuid, f.repository, f.repository_full_name, f.commit, f.file_path,
    f.start_line, f.end_line, f.evidence, f.remediation, f.cwe, f.package, f.version, f.fixed_version,
    f.vulnerability_ids, f.controls, f.scanned_at, f.application, f.parent_application,
    f.file_markers, f.cwe_family, f.exploitable, f.code_context, f.code_context_rule, f.code_context_effect,
    s.team, s.owners, s.business_priority, s.application_is_relevant, s.severity_steps, s.final_severity,
    s.severity_rank, s.severity_factors, s.severity_explanation, s.severity_set_by_rule
FROM findings AS f
JOIN finding_severities AS s USING (finding_id)
