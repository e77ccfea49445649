-- BB-011 Branch need not be up to date: no require_commits_behind applies to main.
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN count(m.kind) = 0 THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN count(m.kind) = 0
            THEN format('no require_commits_behind applies to {}: stale pull requests can be merged', r.mainbranch)
            ELSE format('require_commits_behind on {}{} ({})', r.mainbranch,
                        CASE WHEN min(m.value) IS NULL THEN ''
                             ELSE format(': at most {} commit(s) behind', min(m.value)) END,
                        string_agg(m.matched_by, ', '))
       END AS evidence,
       format('branch:{}:require_commits_behind', r.mainbranch) AS anchor
FROM selected_repositories r
LEFT JOIN main_branch_restrictions m ON m.repository_uuid = r.repository_uuid AND m.kind = 'require_commits_behind'
GROUP BY r.workspace, r.repository_uuid, r.repository, r.mainbranch
