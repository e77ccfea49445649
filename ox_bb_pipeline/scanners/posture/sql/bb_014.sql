-- BB-014 Commits reached main without an approved pull request (evidence, not configuration).
-- Walks main's first-parent history from the head: second parents are the merged branches' own
-- commits, reviewed with their pull request. Each first-parent commit was merged from a pull
-- request (pr_id, with its approvals) or pushed directly. Root commits (the initial commit, or the
-- shallow-history boundary) are skipped: they cannot have come through a pull request.
WITH RECURSIVE first_parent AS (
    SELECT c.repository_uuid, c.commit, c.parents, c.committed_at, c.pr_id, c.pr_approvals
    FROM main_branch_commits c
    JOIN selected_repositories r ON r.repository_uuid = c.repository_uuid AND r.main_head = c.commit
    UNION ALL
    SELECT c.repository_uuid, c.commit, c.parents, c.committed_at, c.pr_id, c.pr_approvals
    FROM first_parent f
    JOIN main_branch_commits c ON c.repository_uuid = f.repository_uuid AND c.commit = f.parents[1]
), walked AS (
    SELECT repository_uuid, count(*) AS commits,
           list(CASE WHEN pr_id IS NOT NULL
                     THEN format('PR #{} merged without approval (merge commit {})', pr_id, left(commit, 12))
                     ELSE format('commit {} ({}) pushed without a pull request', left(commit, 12),
                                 strftime(committed_at, '%Y-%m-%d'))
                END ORDER BY committed_at DESC)
               FILTER (WHERE len(parents) > 0 AND (pr_id IS NULL OR coalesce(pr_approvals, 0) = 0)) AS unreviewed
    FROM first_parent
    GROUP BY repository_uuid
)
SELECT r.workspace, r.repository_uuid, r.repository,
       CASE WHEN r.main_head IS NULL THEN 'pass'
            WHEN w.commits IS NULL THEN 'not_evaluable'
            WHEN len(w.unreviewed) > 0 THEN 'fail'
            ELSE 'pass'
       END AS status,
       CASE WHEN r.main_head IS NULL THEN 'empty repository: no commit on main'
            WHEN w.commits IS NULL THEN format('the history of {} was not extracted', r.mainbranch)
            WHEN len(w.unreviewed) > 0
            THEN format('{} of the last {} commit(s) on {} arrived without an approved pull request: {}',
                        len(w.unreviewed), w.commits, r.mainbranch, listing(w.unreviewed))
            ELSE format('all {} commit(s) on {} arrived through approved pull requests', w.commits, r.mainbranch)
       END AS evidence,
       format('branch:{}:history', r.mainbranch) AS anchor
FROM selected_repositories r
LEFT JOIN walked w ON w.repository_uuid = r.repository_uuid
