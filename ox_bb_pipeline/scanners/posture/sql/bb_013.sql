-- BB-013 Restriction exemptions grant bypass to broad groups: a push or restrict_merges rule on
-- main exempts a broad group, or more than params.max_exempt_users people.
WITH exemptions AS (
    SELECT m.repository_uuid, m.kind, m.matched_by,
           list_intersect(coalesce(m.groups, []), p.broad_groups) AS broad,
           len(coalesce(m.users, [])) AS user_count
    FROM main_branch_restrictions m
    CROSS JOIN params p
    WHERE m.kind IN ('push', 'restrict_merges')
), offending AS (
    SELECT e.repository_uuid,
           list(CASE WHEN len(e.broad) > 0
                     THEN format('{} ({}) exempts the broad group(s) {}', e.kind, e.matched_by,
                                 array_to_string(list_sort(e.broad), ', '))
                     ELSE format('{} ({}) exempts {} users', e.kind, e.matched_by, e.user_count)
                END ORDER BY e.kind) AS items
    FROM exemptions e
    CROSS JOIN params p
    WHERE len(e.broad) > 0 OR e.user_count > p.max_exempt_users
    GROUP BY e.repository_uuid
)
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN o.items IS NULL THEN 'pass' ELSE 'fail' END AS status,
       CASE WHEN o.items IS NULL
            THEN format('push and merge exemptions on {} name no broad group and at most {} users',
                        r.mainbranch, p.max_exempt_users)
            ELSE listing(o.items)
       END AS evidence,
       format('branch:{}:exemptions', r.mainbranch) AS anchor
FROM selected_repositories r
CROSS JOIN params p
LEFT JOIN offending o ON o.repository_uuid = r.repository_uuid
