-- BB-006 Fewer than params.min_approvals (2) approvals required to merge, a missing rule included
-- (Checkov CKV_BITBUCKET_1 parity).
WITH approvals AS (
    SELECT repository_uuid, max(coalesce(value, 0)) AS required, string_agg(matched_by, ', ') AS matched_by
    FROM main_branch_restrictions
    WHERE kind = 'require_approvals_to_merge'
    GROUP BY repository_uuid
)
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN coalesce(a.required, 0) < p.min_approvals THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN a.repository_uuid IS NULL
            THEN format('no require_approvals_to_merge applies to {}; at least {} approvals expected',
                        r.mainbranch, p.min_approvals)
            ELSE format('require_approvals_to_merge on {} requires {} approval(s) ({}); at least {} expected',
                        r.mainbranch, a.required, a.matched_by, p.min_approvals)
       END AS evidence,
       format('branch:{}:require_approvals_to_merge', r.mainbranch) AS anchor
FROM selected_repositories r
CROSS JOIN params p
LEFT JOIN approvals a ON a.repository_uuid = r.repository_uuid
