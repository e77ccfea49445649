-- BB-008 Passing builds not required to merge: no require_passing_builds_to_merge (asking for at
-- least one successful build) applies to main.
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN count(m.kind) = 0 OR max(coalesce(m.value, 1)) < 1 THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN count(m.kind) = 0
            THEN format('no require_passing_builds_to_merge applies to {}: failing builds can be merged', r.mainbranch)
            ELSE format('require_passing_builds_to_merge on {} requires {} successful build(s) ({})', r.mainbranch,
                        max(coalesce(m.value, 1)), string_agg(m.matched_by, ', '))
       END AS evidence,
       format('branch:{}:require_passing_builds_to_merge', r.mainbranch) AS anchor
FROM selected_repositories r
LEFT JOIN main_branch_restrictions m
       ON m.repository_uuid = r.repository_uuid AND m.kind = 'require_passing_builds_to_merge'
GROUP BY r.workspace, r.repository_uuid, r.repository, r.mainbranch
