-- BB-015 Repository is public.
SELECT workspace, repository_uuid, repository,
       CASE WHEN is_private IS FALSE THEN 'fail' ELSE 'pass' END AS status,
       CASE WHEN is_private IS FALSE THEN 'repository is public (is_private = false): anyone can read and clone it'
            ELSE 'repository is private'
       END AS evidence,
       'repository:is_private' AS anchor
FROM selected_repositories
