-- Posture results for analysts: one row per repository (or workspace, for workspace-level checks) and
-- check, whichever connections evaluated it (posture_results has one row per connection: two connections
-- that see a repository would count it twice). The latest evaluated result (pass or fail) wins; a
-- check that no connection could evaluate is not_evaluable. `topic` comes from the catalog, so "which
-- repositories fail branch protection" is `WHERE topic = 'branch_protection' AND status = 'fail'`.
-- depends: posture_results, config_posture_checks, application_mapping
-- column: workspace: workspace slug
-- column: repository_uuid: repository {uuid} ('' for a workspace-level check)
-- column: repository: repository slug (null for a workspace-level check)
-- column: repository_full_name: workspace/slug (null for a workspace-level check)
-- column: application: the repository's application (null for a workspace-level check)
-- column: check_id: posture check (BB-0xx)
-- column: topic: branch_protection | merged_changes | repository_settings | access | webhooks | pipelines | workspace_access
-- column: title: what the check finds when it fails
-- column: category: scm_posture | cicd_posture
-- column: severity: the check's severity
-- column: status: pass | fail | not_evaluable
-- column: evidence: what was seen (from the result that decided the status)
-- column: checked_at: when that result was evaluated
-- column: connections: the connections that evaluated it
-- column: finding_id: the finding a fail became (null otherwise)
WITH results AS (
    SELECT *, coalesce(repository_uuid, '') AS repository_key FROM posture_results
),

chosen AS (
    SELECT workspace, repository_key, check_id,
           arg_max(repository, (status IN ('pass', 'fail'), checked_at)) AS repository,
           arg_max(status, (status IN ('pass', 'fail'), checked_at)) AS status,
           arg_max(evidence, (status IN ('pass', 'fail'), checked_at)) AS evidence,
           arg_max(finding_id, (status IN ('pass', 'fail'), checked_at)) AS finding_id,
           max(checked_at) FILTER (WHERE status IN ('pass', 'fail')) AS evaluated_at,
           max(checked_at) AS last_checked_at,
           list_sort(list_distinct(list(connection))) AS connections
    FROM results
    GROUP BY ALL
)

SELECT
    c.workspace, c.repository_key AS repository_uuid, c.repository,
    CASE WHEN c.repository IS NOT NULL THEN c.workspace || '/' || c.repository END AS repository_full_name,
    m.application,
    c.check_id, k.topic, k.title, k.category, k.severity,
    c.status, c.evidence,
    coalesce(c.evaluated_at, c.last_checked_at) AS checked_at,
    c.connections, c.finding_id
FROM chosen AS c
LEFT JOIN config_posture_checks AS k USING (check_id)
LEFT JOIN application_mapping AS m ON m.repository_uuid = c.repository_key AND NOT m.is_monorepo_child
ORDER BY c.workspace, c.repository, c.check_id
