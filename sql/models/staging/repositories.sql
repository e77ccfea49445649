WITH ctx AS (
    SELECT * FROM {{ invoker_input('build_context') }}
),

repos AS (
    SELECT *
    FROM {{ source('lake', 'raw_repositories') }}
    QUALIFY row_number() OVER (PARTITION BY repository_uuid
                               ORDER BY selected DESC NULLS LAST, extracted_at DESC NULLS LAST, connection) = 1
),

main_heads AS (
    SELECT repository_uuid, max(commit_date) AS head_date
    FROM {{ source('lake', 'raw_branches') }}
    WHERE is_main
    GROUP BY ALL
),

commits AS (
    SELECT c.repository_uuid,
           max(c.committed_at) AS last_commit_at,
           count(DISTINCT c.commit) FILTER (
               WHERE c.committed_at >= ctx.now - to_days(ctx.activity_window_days::INTEGER)) AS commits_recent,
           count(DISTINCT lower(coalesce(c.author_email, c.author))) FILTER (
               WHERE c.committed_at >= ctx.now - to_days(ctx.activity_window_days::INTEGER)) AS contributors_recent
    FROM {{ source('lake', 'raw_main_branch_commits') }} AS c, ctx
    GROUP BY ALL
),

deploys AS (
    SELECT repository_uuid,
           list_sort(list_distinct(flatten(list(deployments)))) AS deployments,
           bool_or(deploys_to_production) AS deploys_to_production,
           string_agg(pipeline_key || ' → ' || array_to_string(production_deployments, ', '), '; '
                      ORDER BY pipeline_key) FILTER (WHERE deploys_to_production) AS production_evidence
    FROM {{ ref('cicd_pipelines') }}
    GROUP BY ALL
),

scans AS (
    SELECT repository_uuid,
           list(DISTINCT scanner ORDER BY scanner) FILTER (WHERE status = 'ok') AS scanners_ok,
           list(DISTINCT scanner ORDER BY scanner) FILTER (WHERE status = 'error') AS scanners_failed,
           bool_or(status = 'error' AND error LIKE 'clone failed%') AS clone_failed,
           max(files_scanned) FILTER (
               WHERE status = 'ok' AND scanner NOT IN ('posture', 'sarif')) AS files_scanned
    FROM {{ source('lake', 'scan_runs') }}
    GROUP BY ALL
),

facts AS (
    SELECT r.*,
           coalesce(h.head_date, c.last_commit_at, r.updated_on) AS last_code_change_at,
           coalesce(c.commits_recent, 0) AS commits_recent,
           coalesce(c.contributors_recent, 0) AS contributors_recent,
           coalesce(d.deployments, []) AS deployments,
           coalesce(d.deploys_to_production, false) AS deploys_to_production,
           d.production_evidence,
           coalesce(s.scanners_ok, []) AS scanners_ok,
           coalesce(s.scanners_failed, []) AS scanners_failed,
           coalesce(s.clone_failed, false) AS clone_failed,
           s.files_scanned
    FROM repos AS r
    LEFT JOIN main_heads AS h USING (repository_uuid)
    LEFT JOIN commits AS c USING (repository_uuid)
    LEFT JOIN deploys AS d USING (repository_uuid)
    LEFT JOIN scans AS s USING (repository_uuid)
),

judged AS (
    SELECT f.*,
           date_diff('day', f.last_code_change_at, ctx.now) AS days_since_code_change,
           list_filter([
               CASE WHEN f.main_head IS NULL THEN 'empty repository: the main branch has no commit' END,
               CASE WHEN f.clone_failed AND len(f.scanners_ok) = 0 THEN 'not clonable: every scan failed to clone it' END,
               CASE WHEN date_diff('day', f.last_code_change_at, ctx.now) > ctx.inactive_after_days
                    THEN format('no code change in {} days', date_diff('day', f.last_code_change_at, ctx.now)) END,
               CASE WHEN f.files_scanned = 0 THEN 'no relevant files: the code scanners found nothing to scan' END
           ], lambda reason: reason IS NOT NULL) AS irrelevant_reasons
    FROM facts AS f, ctx
)

SELECT
    repository_uuid, connection, workspace, repository, full_name, full_name AS repository_full_name,
    project_key, project_name,
    is_private, is_private IS FALSE AS is_public, fork_policy, language, mainbranch, main_head,
    coalesce(selected, true) AS selected, created_on, updated_on,
    last_code_change_at, days_since_code_change, commits_recent, contributors_recent,
    coalesce(has_pipelines_yml, false) AS has_pipelines_yml,
    deployments, deploys_to_production, production_evidence,
    scanners_ok, scanners_failed, files_scanned,
    irrelevant_reasons, len(irrelevant_reasons) = 0 AS is_relevant
FROM judged
