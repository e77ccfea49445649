-- BB-025 Secret-looking pipeline variable not secured, per repository (its repository and deployment
-- variables) and per workspace. The extractor keeps no values: only whether one looked like a secret.
WITH variables AS (
    SELECT workspace, repository_uuid, level = 'workspace' AS workspace_level,
           list(format('{} variable {}{} is not secured and its value ({} chars) looks like a secret', level, key,
                       CASE WHEN environment IS NULL THEN '' ELSE format(' (environment {})', environment) END,
                       value_length)
                ORDER BY level, environment, key) FILTER (WHERE NOT secured AND value_looks_secret) AS offending,
           count(*) AS total
    FROM pipeline_variables
    GROUP BY workspace, repository_uuid, level = 'workspace'
)
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN len(coalesce(v.offending, [])) > 0 THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN len(coalesce(v.offending, [])) > 0 THEN listing(v.offending)
            ELSE format('{} repository/deployment variable(s), none unsecured with a secret-looking value',
                        coalesce(v.total, 0))
       END AS evidence,
       'pipeline_variables:secured' AS anchor
FROM selected_repositories r
LEFT JOIN variables v ON v.repository_uuid = r.repository_uuid AND NOT v.workspace_level
UNION ALL
SELECT w.workspace, NULL, NULL,
       CASE WHEN len(coalesce(v.offending, [])) > 0 THEN 'fail' ELSE 'pass' END,
       CASE WHEN len(coalesce(v.offending, [])) > 0 THEN listing(v.offending)
            ELSE format('{} workspace variable(s), none unsecured with a secret-looking value', coalesce(v.total, 0))
       END,
       format('workspace:{}:pipeline_variables:secured', w.workspace)
FROM evaluated_workspaces w
LEFT JOIN variables v ON v.workspace = w.workspace AND v.workspace_level
