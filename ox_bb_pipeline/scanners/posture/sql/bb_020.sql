-- BB-020 Administrator count outside params.min_admins..params.max_admins (effective permissions).
WITH admins AS (
    SELECT repository_uuid, list(nickname ORDER BY nickname) AS names
    FROM repository_permissions
    WHERE permission = 'admin'
    GROUP BY repository_uuid
)
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN len(coalesce(a.names, [])) BETWEEN p.min_admins AND p.max_admins THEN 'pass' ELSE 'fail' END AS status,
       format('{} administrator(s){}; {} to {} expected', len(coalesce(a.names, [])),
              CASE WHEN a.names IS NULL THEN '' ELSE ': ' || array_to_string(a.names, ', ') END,
              p.min_admins, p.max_admins) AS evidence,
       'permissions:admins' AS anchor
FROM selected_repositories r
CROSS JOIN params p
LEFT JOIN admins a ON a.repository_uuid = r.repository_uuid
