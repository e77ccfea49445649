-- BB-023 Webhook without a secret, per repository (its own hooks) and per workspace (workspace hooks).
-- Evidence names the hook by description and URL origin only: paths and queries may hold tokens.
WITH hooks AS (
    SELECT workspace, repository_uuid, level,
           list(format('webhook ''{}'' to {}{} has no secret', coalesce(nullif(description, ''), hook_uuid),
                       url_origin(url), CASE WHEN active IS FALSE THEN ' (inactive)' ELSE '' END)
                ORDER BY description, hook_uuid) FILTER (WHERE secret_set IS NOT TRUE) AS offending,
           count(*) AS total
    FROM webhooks
    GROUP BY workspace, repository_uuid, level
)
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN len(coalesce(h.offending, [])) > 0 THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN len(coalesce(h.offending, [])) > 0 THEN listing(h.offending)
            ELSE format('{} repository webhook(s), each with a secret', coalesce(h.total, 0))
       END AS evidence,
       'webhooks:secret' AS anchor
FROM selected_repositories r
LEFT JOIN hooks h ON h.repository_uuid = r.repository_uuid AND h.level = 'repository'
UNION ALL
SELECT w.workspace, NULL, NULL,
       CASE WHEN len(coalesce(h.offending, [])) > 0 THEN 'fail' ELSE 'pass' END,
       CASE WHEN len(coalesce(h.offending, [])) > 0 THEN listing(h.offending)
            ELSE format('{} workspace webhook(s), each with a secret', coalesce(h.total, 0))
       END,
       format('workspace:{}:webhooks:secret', w.workspace)
FROM evaluated_workspaces w
LEFT JOIN hooks h ON h.workspace = w.workspace AND h.level = 'workspace'
