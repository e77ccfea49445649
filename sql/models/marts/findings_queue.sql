{{ config(materialized='view') }}
-- findings_queue_base (the lifecycle, stored incrementally by repository) with what moves by itself derived from
-- the build's context when read: last_seen of a seen finding (the build's now), previous_status of a row this build
-- did not compute (its status), the SLA due date and state, today's inactive_repository evidence in the severity
-- explanation of a seen finding, and the application's and the workflow's assignment columns (small tables).
WITH ctx AS (
    SELECT * FROM {{ invoker_input('build_context') }}
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

inactive AS (
    SELECT subject AS repository_uuid, evidence
    FROM {{ ref('severity_evidence') }}
    WHERE scope = 'repository' AND condition = 'inactive_repository'
),

timed AS (
    SELECT b.* REPLACE (
               -- a row this build did not compute kept its status: the last build's is the same
               CASE WHEN b.computed_in = n.build_number THEN b.previous_status ELSE b.status END AS previous_status),
           ctx.now,
           sla.days AS sla_days,
           a.business_priority, a.team, a.owners, coalesce(a.is_relevant, true) AS application_is_relevant,
           i.evidence AS inactive_evidence
    FROM {{ ref('findings_queue_base') }} AS b
    CROSS JOIN ctx
    CROSS JOIN (SELECT max(build_number) AS build_number FROM {{ ref('findings_queue_digests') }}) AS n
    LEFT JOIN {{ invoker_input('config_sla') }} AS sla ON sla.severity = b.final_severity
    LEFT JOIN {{ ref('applications') }} AS a USING (application)
    LEFT JOIN inactive AS i USING (repository_uuid)
),

sla AS (
    SELECT *,
           sla_started_at + to_days(sla_days::INTEGER) AS due_at,
           CASE
               WHEN sla_days IS NULL OR status IN ('suppressed', 'excluded', 'correlated') THEN 'exempt'
               WHEN status = 'resolved' AND resolved_at <= sla_started_at + to_days(sla_days::INTEGER) THEN 'met'
               WHEN status = 'resolved' THEN 'missed'
               WHEN now > sla_started_at + to_days(sla_days::INTEGER) THEN 'breached'
               ELSE 'on_track'
           END AS sla_state
    FROM timed
)

SELECT
    finding_id, status, previous_status, seen, scope_complete,
    application, workspace, repository_uuid, repository, repository_full_name,
    scanner, rule_id, title, category, file_path,
    base_severity, final_severity,
    CASE WHEN seen AND inactive_evidence IS NOT NULL
         THEN replace(severity_explanation, {{ inactive_days_placeholder() }}, inactive_evidence)
         ELSE severity_explanation END AS severity_explanation,
    controls, detected_by, correlated_into, excluded_by,
    code_context, business_priority, team, owners,
    assigned_team, assignee, assigned_by_rule, application_is_relevant,
    first_seen,
    CASE WHEN seen THEN now ELSE last_seen END AS last_seen,
    status_changed_at,
    resolved_at,
    reopened_count,
    suppression_id, suppression_reason, suppression_owner, suppression_expires,
    triage_status, triage_reason, triage_owner, triage_expires, triage_decided_by, triage_decided_at,
    sla_days, sla_started_at, due_at AS sla_due_at, sla_state AS sla_status,
    sla_state IN ('breached', 'missed') AS sla_breached
FROM sla
LEFT JOIN assignments USING (finding_id)
