-- BB-002 Direct push to main not restricted: no `push` restriction applies to main (so every
-- writer may push), or it lets a broad group push, which restricts nobody.
WITH push AS (
    SELECT repository_uuid,
           list_sort(list_distinct(flatten(list(groups)))) AS groups,
           list_sort(list_distinct(flatten(list(users)))) AS users,
           string_agg(DISTINCT matched_by, ', ') AS matched_by
    FROM main_branch_restrictions
    WHERE kind = 'push'
    GROUP BY repository_uuid
)
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN push.repository_uuid IS NULL THEN 'fail'
            WHEN len(list_intersect(push.groups, p.broad_groups)) > 0 THEN 'fail'
            ELSE 'pass'
       END AS status,
       CASE WHEN push.repository_uuid IS NULL
            THEN format('no push restriction applies to {}: everyone with write access can push to it directly',
                        r.mainbranch)
            WHEN len(list_intersect(push.groups, p.broad_groups)) > 0
            THEN format('the push restriction on {} ({}) lets the broad group(s) {} push',
                        r.mainbranch, push.matched_by,
                        array_to_string(list_sort(list_intersect(push.groups, p.broad_groups)), ', '))
            ELSE format('push to {} is limited to groups [{}] and users [{}] ({})', r.mainbranch,
                        array_to_string(push.groups, ', '), array_to_string(push.users, ', '), push.matched_by)
       END AS evidence,
       format('branch:{}:push', r.mainbranch) AS anchor
FROM selected_repositories r
CROSS JOIN params p
LEFT JOIN push ON push.repository_uuid = r.repository_uuid
