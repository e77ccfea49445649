-- BB-024 Webhook over http:// or with TLS verification skipped, per repository and per workspace.
WITH hooks AS (
    SELECT workspace, repository_uuid, level,
           list(format('webhook ''{}'' to {}: {}', coalesce(nullif(description, ''), hook_uuid), url_origin(url),
                       array_to_string(list_filter([
                           CASE WHEN lower(url) LIKE 'http://%' THEN 'plain http://' END,
                           CASE WHEN skip_cert_verification THEN 'certificate verification skipped' END
                       ], lambda x: x IS NOT NULL), ' and '))
                ORDER BY description, hook_uuid)
               FILTER (WHERE lower(url) LIKE 'http://%' OR skip_cert_verification) AS offending,
           count(*) AS total
    FROM webhooks
    GROUP BY workspace, repository_uuid, level
)
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN len(coalesce(h.offending, [])) > 0 THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN len(coalesce(h.offending, [])) > 0 THEN listing(h.offending)
            ELSE format('{} repository webhook(s), each over https with certificate verification', coalesce(h.total, 0))
       END AS evidence,
       'webhooks:transport' AS anchor
FROM selected_repositories r
LEFT JOIN hooks h ON h.repository_uuid = r.repository_uuid AND h.level = 'repository'
UNION ALL
SELECT w.workspace, NULL, NULL,
       CASE WHEN len(coalesce(h.offending, [])) > 0 THEN 'fail' ELSE 'pass' END,
       CASE WHEN len(coalesce(h.offending, [])) > 0 THEN listing(h.offending)
            ELSE format('{} workspace webhook(s), each over https with certificate verification', coalesce(h.total, 0))
       END,
       format('workspace:{}:webhooks:transport', w.workspace)
FROM evaluated_workspaces w
LEFT JOIN hooks h ON h.workspace = w.workspace AND h.level = 'workspace'
