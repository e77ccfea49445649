-- BB-012 No default reviewers, or their approval is not required: the repository has no default
-- reviewers, or no require_default_reviewer_approvals_to_merge applies to main.
WITH reviewers AS (
    SELECT repository_uuid, list(nickname ORDER BY nickname) AS names
    FROM default_reviewers
    GROUP BY repository_uuid
), required AS (
    SELECT repository_uuid, max(coalesce(value, 1)) AS approvals
    FROM main_branch_restrictions
    WHERE kind = 'require_default_reviewer_approvals_to_merge'
    GROUP BY repository_uuid
)
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN rv.names IS NULL OR q.approvals IS NULL THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN rv.names IS NULL AND q.approvals IS NULL
            THEN format('no default reviewers, and no require_default_reviewer_approvals_to_merge on {}', r.mainbranch)
            WHEN rv.names IS NULL
            THEN format('require_default_reviewer_approvals_to_merge is set on {} but the repository has no '
                        || 'default reviewers', r.mainbranch)
            WHEN q.approvals IS NULL
            THEN format('default reviewers {} exist but require_default_reviewer_approvals_to_merge is not set on {}',
                        array_to_string(rv.names, ', '), r.mainbranch)
            ELSE format('{} approval(s) from default reviewers ({}) required on {}', q.approvals,
                        array_to_string(rv.names, ', '), r.mainbranch)
       END AS evidence,
       'default_reviewers' AS anchor
FROM selected_repositories r
LEFT JOIN reviewers rv ON rv.repository_uuid = r.repository_uuid
LEFT JOIN required q ON q.repository_uuid = r.repository_uuid
