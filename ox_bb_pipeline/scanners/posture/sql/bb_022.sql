-- BB-022 Deploy (access) key unused for more than params.unused_days days, or unlabeled.
WITH keys AS (
    SELECT k.repository_uuid,
           list(format('deploy key {}{}: {}', k.key_id,
                       CASE WHEN coalesce(k.comment, '') = '' THEN '' ELSE format(' ({})', k.comment) END,
                       array_to_string(list_filter([
                           CASE WHEN coalesce(k.label, '') = '' THEN 'unlabeled' END,
                           CASE WHEN k.last_used IS NULL AND date_diff('day', k.added_on, p.now) > p.unused_days
                                THEN format('never used since {}', strftime(k.added_on, '%Y-%m-%d'))
                                WHEN date_diff('day', k.last_used, p.now) > p.unused_days
                                THEN format('last used {} ({} days ago)', strftime(k.last_used, '%Y-%m-%d'),
                                            date_diff('day', k.last_used, p.now)) END
                       ], lambda x: x IS NOT NULL), ', '))
                ORDER BY k.key_id)
               FILTER (WHERE coalesce(k.label, '') = ''
                          OR date_diff('day', coalesce(k.last_used, k.added_on), p.now) > p.unused_days) AS offending,
           count(*) AS total
    FROM deploy_keys k
    CROSS JOIN params p
    GROUP BY k.repository_uuid
)
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN len(coalesce(k.offending, [])) > 0 THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN len(coalesce(k.offending, [])) > 0 THEN listing(k.offending)
            ELSE format('{} deploy key(s), each labeled and used in the last {} days', coalesce(k.total, 0),
                        p.unused_days)
       END AS evidence,
       'deploy_keys' AS anchor
FROM selected_repositories r
CROSS JOIN params p
LEFT JOIN keys k ON k.repository_uuid = r.repository_uuid
