WITH ctx AS (
    SELECT * FROM {{ invoker_input('build_context') }}
),

code_scopes AS (
    SELECT repository_uuid, scanner, bool_or(status = 'ok') AS complete
    FROM {{ source('lake', 'scan_runs') }}
    GROUP BY ALL
),

posture_scopes AS (
    SELECT workspace, coalesce(repository_uuid, '') AS repository_uuid, check_id,
           bool_or(status IN ('pass', 'fail')) AS complete
    FROM {{ source('lake', 'posture_results') }}
    GROUP BY ALL
),

merged AS (
    SELECT finding_id,
           c.finding_id IS NOT NULL AS seen,
           p.status AS previous_status,
           coalesce(c.application, p.application) AS application,
           coalesce(c.workspace, p.workspace) AS workspace,
           coalesce(c.repository_uuid, p.repository_uuid) AS repository_uuid,
           coalesce(c.repository, p.repository) AS repository,
           coalesce(c.scanner, p.scanner) AS scanner,
           coalesce(c.rule_id, p.rule_id) AS rule_id,
           coalesce(c.title, p.title) AS title,
           coalesce(c.category, p.category) AS category,
           coalesce(c.file_path, p.file_path) AS file_path,
           coalesce(c.base_severity, p.base_severity) AS base_severity,
           coalesce(c.final_severity, p.final_severity) AS final_severity,
           coalesce(c.severity_explanation, p.severity_explanation) AS severity_explanation,
           coalesce(c.controls, p.controls) AS controls,
           coalesce(c.detected_by, [coalesce(c.scanner, p.scanner) || ':' || coalesce(c.rule_id, p.rule_id)])
               AS detected_by,
           CASE WHEN NOT c.is_primary THEN c.problem_id END AS correlated_into,
           CASE WHEN c.code_context_effect = 'exclude' THEN c.code_context_rule END AS excluded_by,
           c.code_context,
           p.first_seen, p.last_seen, p.status_changed_at, p.resolved_at, p.reopened_count, p.sla_started_at
    FROM (SELECT e.*, k.problem_id, k.is_primary, k.detected_by
          FROM {{ ref('enriched_findings') }} AS e
          LEFT JOIN {{ ref('finding_correlations') }} AS k USING (finding_id)) AS c
    FULL OUTER JOIN {{ invoker_input('previous_findings_queue') }} AS p USING (finding_id)
),

latest_assignments AS (
    SELECT finding_id, field, new, rule
    FROM {{ invoker_input('workflow_decisions') }}
    WHERE field IN ('team', 'owner')
    QUALIFY row_number() OVER (PARTITION BY finding_id, field ORDER BY decided_at DESC, rule) = 1
),

assignments AS (
    SELECT finding_id,
           any_value(new) FILTER (WHERE field = 'team') AS assigned_team,
           any_value(new) FILTER (WHERE field = 'owner') AS assignee,
           array_to_string(list_sort(list_distinct(list(rule))), ', ') AS assigned_by_rule
    FROM latest_assignments
    GROUP BY finding_id
),

suppression_candidates AS (
    -- every fingerprint of this build and the last, matched on what suppressions match on. Each side joins the
    -- few suppressions by itself: no copy of every fingerprint is made, and none is read when nothing can match.
    {%- for side in [ref('enriched_findings'), invoker_input('previous_findings_queue')] %}
    {% if not loop.first %}UNION ALL{% endif %}
    SELECT m.finding_id, s.*
    FROM {{ side }} AS m
    JOIN {{ invoker_input('config_suppressions') }} AS s ON s.fingerprint = m.finding_id
    UNION ALL
    SELECT m.finding_id, s.*
    FROM {{ side }} AS m
    JOIN {{ invoker_input('config_suppressions') }} AS s
        ON s.rule_id = m.rule_id
        AND coalesce(m.file_path, '') GLOB s.path_glob
        AND (m.workspace || '/' || m.repository) GLOB s.repository_glob
    {%- endfor %}
),

suppressions AS (
    SELECT s.finding_id, s.suppression_id, s.reason, s.owner, s.expires,
           s.expires >= CAST(ctx.now AS DATE) AS active
    FROM suppression_candidates AS s, ctx
    QUALIFY row_number() OVER (PARTITION BY s.finding_id ORDER BY s.expires DESC, s.suppression_id) = 1
),

triage AS (
    -- the latest decision per finding (OX_BB_HOME/triage/decisions.jsonl); `open` withdraws the earlier one
    SELECT t.finding_id, t.status AS triage_status, t.reason AS triage_reason, t.owner AS triage_owner,
           t.expires AS triage_expires, t.decided_by AS triage_decided_by, t.decided_at AS triage_decided_at,
           t.status <> 'open' AND (t.expires IS NULL OR t.expires >= CAST(ctx.now AS DATE)) AS triage_active
    FROM {{ invoker_input('triage_decisions') }} AS t, ctx
    QUALIFY row_number() OVER (PARTITION BY t.finding_id ORDER BY t.decided_at DESC, t.decision_order DESC) = 1
),

scoped AS (
    SELECT m.*, s.suppression_id, s.reason, s.owner, s.expires, s.active AS suppression_active,
           t.triage_status, t.triage_reason, t.triage_owner, t.triage_expires, t.triage_decided_by,
           t.triage_decided_at, t.triage_active,
           CASE WHEN m.scanner = 'posture' THEN coalesce(ps.complete, cs.complete, false)
                ELSE coalesce(cs.complete, false) END AS scope_complete
    FROM merged AS m
    LEFT JOIN suppressions AS s USING (finding_id)
    LEFT JOIN triage AS t USING (finding_id)
    LEFT JOIN code_scopes AS cs ON cs.repository_uuid = m.repository_uuid AND cs.scanner = m.scanner
    LEFT JOIN posture_scopes AS ps
        ON ps.workspace = m.workspace AND ps.repository_uuid = m.repository_uuid AND ps.check_id = m.rule_id
),

judged AS (
    SELECT *,
           CASE
               WHEN NOT seen AND (previous_status = 'resolved' OR scope_complete) THEN 'resolved'
               WHEN seen AND excluded_by IS NOT NULL THEN 'excluded'
               WHEN seen AND correlated_into IS NOT NULL THEN 'correlated'
               WHEN suppression_active OR triage_active THEN 'suppressed'
               WHEN previous_status IS NULL THEN 'new'
               WHEN previous_status IN ('resolved', 'suppressed') THEN 'reopened'
               ELSE 'open'
           END AS status
    FROM scoped
),

timed AS (
    SELECT j.*, ctx.now,
           coalesce(j.first_seen, ctx.now) AS first_seen_at,
           CASE WHEN j.seen THEN ctx.now ELSE j.last_seen END AS last_seen_at,
           CASE WHEN j.status IS DISTINCT FROM j.previous_status THEN ctx.now ELSE j.status_changed_at END
               AS changed_at,
           CASE WHEN j.status <> 'resolved' THEN NULL
                WHEN j.previous_status = 'resolved' THEN j.resolved_at
                ELSE ctx.now END AS resolved_at_now,
           coalesce(j.reopened_count, 0) + CASE WHEN j.status = 'reopened' THEN 1 ELSE 0 END AS reopened,
           CASE WHEN j.status IN ('new', 'reopened') THEN ctx.now
                ELSE coalesce(j.sla_started_at, j.first_seen, ctx.now) END AS sla_start,
           sla.days AS sla_days,
           a.business_priority, a.team, a.owners, coalesce(a.is_relevant, true) AS application_is_relevant
    FROM judged AS j
    CROSS JOIN ctx
    LEFT JOIN {{ invoker_input('config_sla') }} AS sla ON sla.severity = j.final_severity
    LEFT JOIN {{ ref('applications') }} AS a USING (application)
),

sla AS (
    SELECT *,
           sla_start + to_days(sla_days::INTEGER) AS due_at,
           CASE
               WHEN sla_days IS NULL OR status IN ('suppressed', 'excluded', 'correlated') THEN 'exempt'
               WHEN status = 'resolved' AND resolved_at_now <= sla_start + to_days(sla_days::INTEGER) THEN 'met'
               WHEN status = 'resolved' THEN 'missed'
               WHEN now > sla_start + to_days(sla_days::INTEGER) THEN 'breached'
               ELSE 'on_track'
           END AS sla_state
    FROM timed
)

SELECT
    finding_id, status, previous_status, seen, scope_complete,
    application, workspace, repository_uuid, repository, workspace || '/' || repository AS repository_full_name,
    scanner, rule_id, title, category, file_path,
    base_severity, final_severity, severity_explanation, controls, detected_by, correlated_into, excluded_by,
    code_context, business_priority, team, owners,
    assigned_team, assignee, assigned_by_rule, application_is_relevant,
    first_seen_at AS first_seen,
    last_seen_at AS last_seen,
    changed_at AS status_changed_at,
    resolved_at_now AS resolved_at,
    reopened::INTEGER AS reopened_count,
    suppression_id, reason AS suppression_reason, owner AS suppression_owner, expires AS suppression_expires,
    triage_status, triage_reason, triage_owner, triage_expires, triage_decided_by, triage_decided_at,
    sla_days, sla_start AS sla_started_at, due_at AS sla_due_at, sla_state AS sla_status,
    sla_state IN ('breached', 'missed') AS sla_breached
FROM sla
LEFT JOIN assignments USING (finding_id)
