{{ config(materialized='view') }}
SELECT
    f.finding_id, f.scanner, f.scanner_version, f.rule_id, f.title, f.category, f.base_severity,
    f.connection, f.workspace, f.repository_uuid, f.repository, f.repository_full_name, f.commit, f.file_path,
    f.start_line, f.end_line, f.evidence, f.remediation, f.cwe, f.package, f.version, f.fixed_version,
    f.vulnerability_ids, f.controls, f.scanned_at, f.application, f.parent_application,
    f.file_markers, f.cwe_family, f.exploitable, f.code_context, f.code_context_rule, f.code_context_effect,
    s.team, s.owners, s.business_priority, s.application_is_relevant, s.severity_steps, s.final_severity,
    s.severity_rank, s.severity_factors, s.severity_explanation, s.severity_set_by_rule
FROM {{ ref('findings') }} AS f
JOIN {{ ref('finding_severities') }} AS s USING (finding_id)
