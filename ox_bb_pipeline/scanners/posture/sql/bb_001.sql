-- BB-001 Main branch has no restrictions: no branch permission or merge check applies to main
-- (main_branch_restrictions has resolved glob patterns and branching-model types already).
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN count(m.kind) = 0 THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN count(m.kind) = 0
            THEN format('no branch restriction applies to {}, by pattern or branching model', r.mainbranch)
            ELSE format('{} restriction(s) apply to {}: {}', count(m.kind), r.mainbranch,
                        string_agg(DISTINCT m.kind, ', ' ORDER BY m.kind))
       END AS evidence,
       format('branch:{}:restrictions', r.mainbranch) AS anchor
FROM selected_repositories r
LEFT JOIN main_branch_restrictions m ON m.repository_uuid = r.repository_uuid
GROUP BY r.workspace, r.repository_uuid, r.repository, r.mainbranch
