-- BB-010 Open tasks or comments may remain at merge: main lacks require_tasks_to_be_completed or
-- require_all_comments_resolved.
WITH present AS (
    SELECT repository_uuid, list(DISTINCT kind) AS kinds
    FROM main_branch_restrictions
    WHERE kind IN ('require_tasks_to_be_completed', 'require_all_comments_resolved')
    GROUP BY repository_uuid
), missing AS (
    SELECT r.workspace, r.repository_uuid, r.repository, r.mainbranch,
           list_filter(['require_tasks_to_be_completed', 'require_all_comments_resolved'],
                       lambda k: NOT list_contains(coalesce(pr.kinds, []), k)) AS kinds
    FROM selected_repositories r
    LEFT JOIN present pr ON pr.repository_uuid = r.repository_uuid
)
SELECT workspace, repository_uuid, repository,
       CASE WHEN len(kinds) > 0 THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN len(kinds) > 0
            THEN format('{} not set on {}', array_to_string(kinds, ' and '), mainbranch)
            ELSE format('open tasks and unresolved comments block merges into {}', mainbranch)
       END AS evidence,
       format('branch:{}:tasks_and_comments', mainbranch) AS anchor
FROM missing
