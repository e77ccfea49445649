-- BB-007 Approvals not reset when the pull request changes: neither the full nor the smart reset
-- applies to main.
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN count(m.kind) = 0 THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN count(m.kind) = 0
            THEN format('neither reset_pullrequest_approvals_on_change nor smart_reset_pullrequest_approvals '
                        || 'applies to {}: approvals survive new commits', r.mainbranch)
            ELSE format('{} on {} ({})', string_agg(DISTINCT m.kind, ', '), r.mainbranch,
                        string_agg(DISTINCT m.matched_by, ', '))
       END AS evidence,
       format('branch:{}:reset_approvals', r.mainbranch) AS anchor
FROM selected_repositories r
LEFT JOIN main_branch_restrictions m
       ON m.repository_uuid = r.repository_uuid
      AND m.kind IN ('reset_pullrequest_approvals_on_change', 'smart_reset_pullrequest_approvals')
GROUP BY r.workspace, r.repository_uuid, r.repository, r.mainbranch
