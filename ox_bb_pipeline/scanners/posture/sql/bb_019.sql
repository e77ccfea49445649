-- BB-019 Public repository lacks SECURITY.md. Private repositories pass without a look; public ones
-- need the file listing of the main head (repository_files, from the scan stage's snapshots).
WITH listed AS (
    SELECT repository_uuid,
           min(path) FILTER (WHERE lower(path) IN ('security.md', 'docs/security.md', '.bitbucket/security.md',
                                                   '.github/security.md')) AS policy
    FROM repository_files
    GROUP BY repository_uuid
)
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN r.is_private IS NOT FALSE THEN 'pass'
            WHEN l.repository_uuid IS NULL THEN 'not_evaluable'
            WHEN l.policy IS NULL THEN 'fail'
            ELSE 'pass'
       END AS status,
       CASE WHEN r.is_private IS NOT FALSE THEN 'private repository: no security policy file required'
            WHEN l.repository_uuid IS NULL THEN 'no file listing of the main head (repository_files) to look in'
            WHEN l.policy IS NULL THEN 'public repository without SECURITY.md (root, docs/ or .bitbucket/)'
            ELSE format('security policy at {}', l.policy)
       END AS evidence,
       'file:SECURITY.md' AS anchor
FROM selected_repositories r
LEFT JOIN listed l ON l.repository_uuid = r.repository_uuid
