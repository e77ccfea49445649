-- BB-016 Private repository allows forks (public ones can be copied anyway: BB-015).
SELECT workspace, repository_uuid, repository,
       CASE WHEN is_private AND fork_policy = 'allow_forks' THEN 'fail' ELSE 'pass' END AS status,
       format('{} repository, fork_policy = {}', CASE WHEN is_private THEN 'private' ELSE 'public' END,
              coalesce(fork_policy, 'unknown')) AS evidence,
       'repository:fork_policy' AS anchor
FROM selected_repositories
