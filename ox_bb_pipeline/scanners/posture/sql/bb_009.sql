-- BB-009 Merge checks not enforced: without enforce_merge_checks (Premium) the merge checks on main
-- are advisory. A 403 on the restrictions (lower plans) makes this not_evaluable, via extraction_status.
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN count(m.kind) = 0 THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN count(m.kind) = 0
            THEN format('no enforce_merge_checks applies to {}: merge checks are advisory and can be ignored',
                        r.mainbranch)
            ELSE format('enforce_merge_checks on {} ({})', r.mainbranch, string_agg(m.matched_by, ', '))
       END AS evidence,
       format('branch:{}:enforce_merge_checks', r.mainbranch) AS anchor
FROM selected_repositories r
LEFT JOIN main_branch_restrictions m ON m.repository_uuid = r.repository_uuid AND m.kind = 'enforce_merge_checks'
GROUP BY r.workspace, r.repository_uuid, r.repository, r.mainbranch
