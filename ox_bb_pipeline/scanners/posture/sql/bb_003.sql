-- BB-003 History rewrite allowed on main: Bitbucket prevents force pushes only when a `force`
-- restriction applies to the branch.
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN count(m.kind) = 0 THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN count(m.kind) = 0
            THEN format('no force restriction applies to {}: force pushes can rewrite its history', r.mainbranch)
            ELSE format('force pushes to {} are prevented ({})', r.mainbranch, string_agg(m.matched_by, ', '))
       END AS evidence,
       format('branch:{}:force', r.mainbranch) AS anchor
FROM selected_repositories r
LEFT JOIN main_branch_restrictions m ON m.repository_uuid = r.repository_uuid AND m.kind = 'force'
GROUP BY r.workspace, r.repository_uuid, r.repository, r.mainbranch
