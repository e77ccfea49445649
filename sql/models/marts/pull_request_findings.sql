-- What each pull request introduces, as of its latest scan (scanners/pull_requests.py): one row per pull request and
-- introduced finding, beside the scan's result; a pull request whose latest scan introduced nothing has one row with
-- empty finding columns, so that passing pull requests are listed too. Never evidence: a secret's masked preview
-- stays in the lake and in Bitbucket's annotations.
WITH latest_scans AS (
    SELECT *
    FROM {{ source('lake', 'pull_request_scans') }}
    QUALIFY row_number() OVER (
        PARTITION BY connection, repository_uuid, pull_request_id ORDER BY scanned_at DESC, source_commit
    ) = 1
),

pull_requests AS (
    -- the pull request's state as last extracted (null: scanned before the extract saw it)
    SELECT connection, repository_uuid, pr_id AS pull_request_id, state
    FROM {{ source('lake', 'raw_pull_requests') }}
    QUALIFY row_number() OVER (PARTITION BY connection, repository_uuid, pr_id ORDER BY updated_on DESC) = 1
)

SELECT
    s.connection,
    s.workspace,
    s.repository_uuid,
    s.repository,
    s.workspace || '/' || s.repository AS repository_full_name,
    s.pull_request_id,
    s.title AS pull_request_title,
    p.state AS pull_request_state,
    s.source_branch,
    s.destination_branch,
    s.source_commit,
    s.merge_base,
    s.result,
    s.severity_threshold,
    s.introduced AS introduced_findings,
    s.resolved AS resolved_findings,
    len(s.scanner_errors) AS scanner_errors,
    s.written_to_bitbucket,
    s.scanned_at,
    f.finding_id,
    f.scanner,
    f.rule_id,
    f.title,
    f.category,
    f.base_severity AS severity,
    f.file_path,
    f.start_line,
    f.cwe,
    f.package,
    f.version,
    f.fixed_version
FROM latest_scans AS s
LEFT JOIN pull_requests AS p USING (connection, repository_uuid, pull_request_id)
LEFT JOIN {{ source('lake', 'pull_request_scan_findings') }} AS f
    ON f.connection = s.connection AND f.repository_uuid = s.repository_uuid AND f.commit = s.source_commit
