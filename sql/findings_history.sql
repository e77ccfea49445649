-- Append-only log of the queue: one row per finding whose status or final severity changed in a
-- build (its first appearance included). Rows of earlier builds are never rewritten or deleted, so
-- the full lifecycle of every fingerprint can be replayed.
-- materialized: append
-- depends: findings_queue, previous_findings_queue, build_context
-- column: build_id: the build that recorded the change
-- column: recorded_at: the build's now
-- column: finding_id: the finding
-- column: status: status after the change
-- column: previous_status: status before it (null: first seen)
-- column: final_severity: final severity after the change
-- column: previous_final_severity: final severity before it
-- column: application: application at the time
-- column: repository: repository slug
-- column: repository_full_name: workspace/slug (a slug alone is ambiguous: two workspaces may both have it)
-- column: rule_id: the scanner's rule
-- column: change: what changed: the new status, or `severity` when only the final severity moved
SELECT
    ctx.build_id,
    ctx.now AS recorded_at,
    q.finding_id,
    q.status,
    p.status AS previous_status,
    q.final_severity,
    p.final_severity AS previous_final_severity,
    q.application,
    q.repository,
    q.repository_full_name,
    q.rule_id,
    CASE WHEN q.status IS DISTINCT FROM p.status THEN q.status ELSE 'severity' END AS change
FROM findings_queue AS q
CROSS JOIN build_context AS ctx
LEFT JOIN previous_findings_queue AS p USING (finding_id)
WHERE q.status IS DISTINCT FROM p.status
   OR q.final_severity IS DISTINCT FROM p.final_severity
