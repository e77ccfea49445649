-- BB-017 Inactive repository still writable: no push or change for params.inactive_days days
-- (Bitbucket Cloud has no archive switch, so an inactive repository stays writable).
WITH last_commit AS (
    SELECT repository_uuid, max(commit_date) AS at FROM branches GROUP BY repository_uuid
), activity AS (
    SELECT r.workspace, r.repository_uuid, r.repository, greatest(r.updated_on, b.at) AS last_at
    FROM selected_repositories r
    LEFT JOIN last_commit b ON b.repository_uuid = r.repository_uuid
)
SELECT a.workspace, a.repository_uuid, a.repository,
       CASE WHEN a.last_at IS NULL THEN 'not_evaluable'
            WHEN date_diff('day', a.last_at, p.now) > p.inactive_days THEN 'fail'
            ELSE 'pass'
       END AS status,
       CASE WHEN a.last_at IS NULL THEN 'no update or commit date known'
            ELSE format('last push or change {} ({} days ago); inactive after {} days',
                        strftime(a.last_at, '%Y-%m-%d'), date_diff('day', a.last_at, p.now), p.inactive_days)
       END AS evidence,
       'repository:activity' AS anchor
FROM activity a
CROSS JOIN params p
