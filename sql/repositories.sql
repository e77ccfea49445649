-- One row per repository (by its immutable uuid, whichever connections see it), with the activity,
-- deployment and scan facts the applications, severity factors and relevance rules read.
-- depends: raw_repositories, raw_branches, raw_main_branch_commits, cicd_pipelines, scan_runs, build_context
-- column: repository_uuid: repository {uuid}, immutable
-- column: connection: connection the row was read through (a selecting one first, then the latest read)
-- column: workspace: workspace slug
-- column: repository: repository slug
-- column: full_name: workspace/slug
-- column: repository_full_name: workspace/slug (a slug alone is ambiguous: two workspaces may both have it)
-- column: project_key: Bitbucket project key
-- column: project_name: Bitbucket project name
-- column: is_private: private repository
-- column: is_public: public repository (visible to anyone on the internet)
-- column: fork_policy: allow_forks | no_public_forks | no_forks
-- column: language: language Bitbucket reports
-- column: mainbranch: main branch name
-- column: main_head: main branch head commit (null: empty repository)
-- column: selected: included by the connection's selection globs (only selected repositories are scanned and mapped)
-- column: created_on: creation time
-- column: updated_on: last push or settings change (Bitbucket)
-- column: last_code_change_at: main-branch head commit time (else the latest main commit, else updated_on)
-- column: days_since_code_change: whole days from last_code_change_at to the build's now
-- column: commits_recent: main-branch commits in the activity window (build_context.activity_window_days)
-- column: contributors_recent: distinct commit authors on main in the activity window
-- column: has_pipelines_yml: bitbucket-pipelines.yml at the main head
-- column: deployments: deployment environments its pipelines deploy to
-- column: deploys_to_production: a pipeline deploys to a production environment
-- column: production_evidence: which pipeline deploys where, e.g. `branches:main → production`
-- column: scanners_ok: scanners whose latest run on the repository succeeded
-- column: scanners_failed: scanners whose latest run on the repository failed
-- column: files_scanned: most files a code scanner read in its latest successful run
-- column: irrelevant_reasons: why the repository is irrelevant (empty when it is relevant)
-- column: is_relevant: no irrelevance reason applies
WITH ctx AS (
    SELECT * FROM build_context
),

repos AS (
    SELECT *
    FROM raw_repositories
    QUALIFY row_number() OVER (PARTITION BY repository_uuid
                               ORDER BY selected DESC NULLS LAST, extracted_at DESC NULLS LAST, connection) = 1
),

main_heads AS (
    SELECT repository_uuid, max(commit_date) AS head_date
    FROM raw_branches
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
    FROM raw_main_branch_commits AS c, ctx
    GROUP BY ALL
),

deploys AS (
    SELECT repository_uuid,
           list_sort(list_distinct(flatten(list(deployments)))) AS deployments,
           bool_or(deploys_to_production) AS deploys_to_production,
           string_agg(pipeline_key || ' → ' || array_to_string(production_deployments, ', '), '; '
                      ORDER BY pipeline_key) FILTER (WHERE deploys_to_production) AS production_evidence
    FROM cicd_pipelines
    GROUP BY ALL
),

scans AS (
    SELECT repository_uuid,
           list(DISTINCT scanner ORDER BY scanner) FILTER (WHERE status = 'ok') AS scanners_ok,
           list(DISTINCT scanner ORDER BY scanner) FILTER (WHERE status = 'error') AS scanners_failed,
           bool_or(status = 'error' AND error LIKE 'clone failed%') AS clone_failed,
           max(files_scanned) FILTER (
               WHERE status = 'ok' AND scanner NOT IN ('posture', 'sarif')) AS files_scanned
    FROM scan_runs
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
