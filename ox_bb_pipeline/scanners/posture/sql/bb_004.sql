-- BB-004 Main branch can be deleted: Bitbucket prevents deletion only when a `delete` restriction
-- applies to the branch.
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN count(m.kind) = 0 THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN count(m.kind) = 0
            THEN format('no delete restriction applies to {}: it can be deleted', r.mainbranch)
            ELSE format('deleting {} is prevented ({})', r.mainbranch, string_agg(m.matched_by, ', '))
       END AS evidence,
       format('branch:{}:delete', r.mainbranch) AS anchor
FROM selected_repositories r
LEFT JOIN main_branch_restrictions m ON m.repository_uuid = r.repository_uuid AND m.kind = 'delete'
GROUP BY r.workspace, r.repository_uuid, r.repository, r.mainbranch
