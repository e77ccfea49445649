-- BB-005 No approvals required to merge: no require_approvals_to_merge applies to main, or it
-- asks for fewer than one approval.
WITH approvals AS (
    SELECT repository_uuid, max(coalesce(value, 0)) AS required, string_agg(matched_by, ', ') AS matched_by
    FROM main_branch_restrictions
    WHERE kind = 'require_approvals_to_merge'
    GROUP BY repository_uuid
)
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN coalesce(a.required, 0) < 1 THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN a.repository_uuid IS NULL
            THEN format('no require_approvals_to_merge applies to {}: pull requests merge without any approval',
                        r.mainbranch)
            ELSE format('require_approvals_to_merge on {} requires {} approval(s) ({})',
                        r.mainbranch, a.required, a.matched_by)
       END AS evidence,
       format('branch:{}:require_approvals_to_merge', r.mainbranch) AS anchor
FROM selected_repositories r
LEFT JOIN approvals a ON a.repository_uuid = r.repository_uuid
