-- Compliance per application and framework control (CIS Software Supply Chain Security Guide,
-- NIST SSDF SP 800-218, OWASP Top 10 CI/CD Security Risks). Evidence comes from three places:
-- posture check results (through the catalog's control mappings), open findings carrying the
-- control, and the scanners that completely scanned the application's repositories.
--   fail           an open finding carries the control
--   not_evaluable  no fail, but a check could not be evaluated or a scanner failed, or nothing covers it
--   pass           every check and scan that covers it passed (suppressed findings are listed apart)
-- Repository settings and workspace settings count for every application of the repository or
-- workspace; a finding in a file counts for the application the file belongs to.
-- depends: applications, application_mapping, findings_queue, enriched_findings, posture_results
-- depends: config_posture_checks, config_scanner_controls, config_frameworks, scan_runs
-- column: application: application name
-- column: framework: cis_ssc | ssdf | owasp_cicd
-- column: framework_title: the framework's name
-- column: control_id: flattened control id, e.g. CIS-SSC-1.1.16, SSDF-PS.1.1, CICD-SEC-1
-- column: status: pass | fail | not_evaluable
-- column: failing_finding_ids: open findings that fail the control
-- column: accepted_finding_ids: suppressed findings (accepted risk) that would fail it
-- column: sources: posture checks and scanners that gave evidence
-- column: evidence: what was seen, failures first (at most 20 lines)
-- column: evidence_count: evidence lines in all
-- column: application_is_relevant: false when the application is irrelevant
WITH app_repos AS (
    SELECT DISTINCT application, repository_uuid, workspace, full_name
    FROM application_mapping
),

check_controls AS (
    SELECT check_id, unnest(controls) AS control_id
    FROM config_posture_checks
),

finding_controls AS (
    SELECT finding_id, scanner, unnest(controls) AS control_id
    FROM enriched_findings
),

scanner_controls AS (
    SELECT scanner, control_id FROM config_scanner_controls
    UNION
    SELECT DISTINCT scanner, control_id FROM finding_controls WHERE scanner <> 'posture'
),

controls AS (
    SELECT DISTINCT c.control_id, fw.framework, fw.title AS framework_title
    FROM (
        SELECT control_id FROM check_controls
        UNION SELECT control_id FROM scanner_controls
        UNION SELECT control_id FROM finding_controls
    ) AS c
    JOIN config_frameworks AS fw ON starts_with(c.control_id, fw.prefix)
),

posture_results_per_app AS (
    -- a workspace-level result (no repository) counts for every application of the workspace
    SELECT ar.application, pr.*
    FROM posture_results AS pr JOIN app_repos AS ar USING (repository_uuid)
    UNION ALL
    SELECT ar.application, pr.*
    FROM posture_results AS pr JOIN app_repos AS ar USING (workspace)
    WHERE pr.repository_uuid IS NULL
),

posture_evidence AS (
    -- fails arrive as findings (below); here the checks that passed or could not be evaluated
    SELECT pr.application, cc.control_id, pr.status AS outcome, NULL::VARCHAR AS finding_id,
           pr.check_id AS source,
           format('{} {} on {}{}', pr.check_id, pr.status, coalesce(pr.workspace || '/' || pr.repository, pr.workspace),
                  coalesce(': ' || pr.evidence, '')) AS evidence
    FROM posture_results_per_app AS pr
    JOIN check_controls AS cc USING (check_id)
    WHERE pr.status IN ('pass', 'not_evaluable')
),

scan_scopes AS (
    SELECT repository_uuid, scanner, bool_or(status = 'ok') AS ok,
           any_value(error) FILTER (WHERE status = 'error') AS error
    FROM scan_runs
    GROUP BY ALL
),

scan_evidence AS (
    SELECT ar.application, sc.control_id,
           CASE WHEN s.ok THEN 'pass' ELSE 'not_evaluable' END AS outcome,
           NULL::VARCHAR AS finding_id, s.scanner AS source,
           CASE WHEN s.ok THEN format('{} scanned {}', s.scanner, ar.full_name)
                ELSE format('{} failed on {}: {}', s.scanner, ar.full_name, coalesce(s.error, 'error')) END
               AS evidence
    FROM scan_scopes AS s
    JOIN app_repos AS ar USING (repository_uuid)
    JOIN scanner_controls AS sc USING (scanner)
),

finding_apps AS (
    -- a file belongs to its application; a repository setting to each application of the
    -- repository; a workspace setting to each application of the workspace
    SELECT finding_id, application FROM enriched_findings WHERE file_path IS NOT NULL
    UNION
    SELECT e.finding_id, ar.application
    FROM enriched_findings AS e JOIN app_repos AS ar USING (repository_uuid)
    WHERE e.file_path IS NULL AND e.repository_uuid <> ''
    UNION
    SELECT e.finding_id, ar.application
    FROM enriched_findings AS e JOIN app_repos AS ar USING (workspace)
    WHERE e.file_path IS NULL AND e.repository_uuid = ''
),

finding_evidence AS (
    SELECT fa.application, fc.control_id,
           CASE WHEN q.status = 'suppressed' THEN 'accepted' ELSE 'fail' END AS outcome,
           q.finding_id, q.scanner AS source,
           format('{} {}: {} ({}){}', q.rule_id, q.final_severity, q.title,
                  coalesce(q.repository || '/' || q.file_path, q.repository, q.workspace),
                  CASE WHEN q.status = 'suppressed' THEN ' suppressed: ' || q.suppression_reason ELSE '' END)
               AS evidence
    FROM findings_queue AS q
    JOIN finding_controls AS fc USING (finding_id)
    JOIN finding_apps AS fa USING (finding_id)
    WHERE q.status IN ('new', 'open', 'reopened', 'suppressed')
),

evidence AS (
    SELECT * FROM posture_evidence
    UNION ALL SELECT * FROM scan_evidence
    UNION ALL SELECT * FROM finding_evidence
),

per_control AS (
    SELECT application, control_id,
           bool_or(outcome = 'fail') AS has_fail,
           bool_or(outcome = 'not_evaluable') AS has_not_evaluable,
           bool_or(outcome IN ('pass', 'accepted')) AS has_pass,
           list(DISTINCT finding_id ORDER BY finding_id) FILTER (WHERE outcome = 'fail') AS failing_finding_ids,
           list(DISTINCT finding_id ORDER BY finding_id) FILTER (WHERE outcome = 'accepted') AS accepted_finding_ids,
           list(DISTINCT source ORDER BY source) AS sources,
           list(evidence ORDER BY CASE outcome WHEN 'fail' THEN 0 WHEN 'not_evaluable' THEN 1
                                               WHEN 'accepted' THEN 2 ELSE 3 END, evidence) AS evidence
    FROM evidence
    GROUP BY ALL
)

SELECT
    a.application, c.framework, c.framework_title, c.control_id,
    CASE WHEN p.has_fail THEN 'fail'
         WHEN p.has_not_evaluable OR p.has_pass IS NOT TRUE THEN 'not_evaluable'
         ELSE 'pass' END AS status,
    coalesce(p.failing_finding_ids, []) AS failing_finding_ids,
    coalesce(p.accepted_finding_ids, []) AS accepted_finding_ids,
    coalesce(p.sources, []) AS sources,
    coalesce(list_slice(p.evidence, 1, 20),
             ['no posture check or complete scan covers this control for the application']) AS evidence,
    coalesce(len(p.evidence), 0) AS evidence_count,
    a.is_relevant AS application_is_relevant
FROM applications AS a
CROSS JOIN controls AS c
LEFT JOIN per_control AS p ON p.application = a.application AND p.control_id = c.control_id
