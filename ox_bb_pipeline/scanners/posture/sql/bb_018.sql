-- BB-018 Stale branches: branches other than main whose head commit is older than params.stale_days.
WITH stale AS (
    SELECT b.repository_uuid,
           list(format('{} (last commit {})', b.branch, strftime(b.commit_date, '%Y-%m-%d'))
                ORDER BY b.commit_date, b.branch) AS items
    FROM branches b
    CROSS JOIN params p
    WHERE NOT coalesce(b.is_main, FALSE) AND date_diff('day', b.commit_date, p.now) > p.stale_days
    GROUP BY b.repository_uuid
)
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN s.items IS NULL THEN 'pass' ELSE 'fail' END AS status,
       CASE WHEN s.items IS NULL THEN format('no branch without a commit for {} days', p.stale_days)
            ELSE format('{} branch(es) without a commit for {} days: {}', len(s.items), p.stale_days, listing(s.items))
       END AS evidence,
       'branches:stale' AS anchor
FROM selected_repositories r
CROSS JOIN params p
LEFT JOIN stale s ON s.repository_uuid = r.repository_uuid
