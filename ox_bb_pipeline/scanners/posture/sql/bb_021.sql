-- BB-021 Users with write or admin access and no activity in params.inactive_days days. Activity is
-- pull-request activity in the repository (author, approver, merger): git commit authors are
-- names and e-mails that cannot be tied to Bitbucket accounts from these tables.
WITH activity AS (
    SELECT repository_uuid, author AS nickname, updated_on AS seen_at FROM pull_requests
    UNION ALL
    SELECT repository_uuid, closed_by, updated_on FROM pull_requests WHERE closed_by IS NOT NULL
    UNION ALL
    SELECT repository_uuid, unnest(approvers), updated_on FROM pull_requests
), last_seen AS (
    SELECT repository_uuid, nickname, max(seen_at) AS seen_at FROM activity GROUP BY repository_uuid, nickname
), inactive AS (
    SELECT w.repository_uuid,
           list(format('{} ({}, {})', w.nickname, w.permission,
                       CASE WHEN s.seen_at IS NULL THEN 'no pull-request activity'
                            ELSE 'last pull-request activity ' || strftime(s.seen_at, '%Y-%m-%d') END)
                ORDER BY w.nickname) AS items
    FROM repository_permissions w
    CROSS JOIN params p
    LEFT JOIN last_seen s ON s.repository_uuid = w.repository_uuid AND s.nickname = w.nickname
    WHERE w.permission IN ('write', 'admin')
      AND (s.seen_at IS NULL OR date_diff('day', s.seen_at, p.now) > p.inactive_days)
    GROUP BY w.repository_uuid
)
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN i.items IS NULL THEN 'pass' ELSE 'fail' END AS status,
       CASE WHEN i.items IS NULL THEN format('every writer was active in the last {} days', p.inactive_days)
            ELSE format('{} writer(s) inactive for {} days: {}', len(i.items), p.inactive_days, listing(i.items))
       END AS evidence,
       'permissions:inactive_writers' AS anchor
FROM selected_repositories r
CROSS JOIN params p
LEFT JOIN inactive i ON i.repository_uuid = r.repository_uuid
