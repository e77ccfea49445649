{#- findings_queue as stored: one row per fingerprint ever seen with its lifecycle state, incremental by repository.
    A build recomputes (delete+insert by finding_id) the findings of the repositories whose inputs changed
    (findings_queue_digests), whose triage decision changed or came into or out of force, or that hold a new or
    reopened finding (it becomes open with nothing changed), except their findings not seen (resolved, or still open
    or suppressed while the scan scope is incomplete), which only a change of their scope or triage moves; every
    other row is a fixed point of the lifecycle and is kept. What changes by itself is not stored as shown: the findings_queue view derives last_seen of a seen
    finding, previous_status of a row this build did not compute (its status), SLA due date and state, and today's
    inactive_repository "N days" (a placeholder here, as in finding_severities_base) from the build's context.
    The first build, a --full-refresh and every build after a change of a setting or of this SQL (part of every
    digest) recompute all rows, from the last state when there is one. -#}
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='finding_id',
          on_schema_change='sync_all_columns') }}
-- depends_on: {{ ref('findings_queue_digests') }}
{%- set stored_relation = load_relation(this) %}
{#- a warehouse built before the base existed: its findings_queue table, kept by the runner for this build -#}
{%- set queue_table = adapter.get_relation(this.database, this.schema, 'previous_findings_queue') %}
WITH ctx AS (
    SELECT * FROM {{ invoker_input('build_context') }}
),

last_build AS (
    -- what the last build's findings_queue showed that is not stored: its now, and its inactive evidence
    SELECT repository_uuid, inactive_evidence, built_at FROM {{ invoker_input('previous_findings_queue_digests') }}
),

stored AS NOT MATERIALIZED (
    -- not materialised: each reader takes only its columns and rows (a copy of every stored row was most of a night)
    {%- if stored_relation is not none %}
    SELECT * FROM {{ stored_relation }}
    {%- elif queue_table is not none %}
    -- as shown, not as stored: last_seen and the explanation are final (seen false), the rest as the base keeps it
    SELECT * REPLACE (false AS seen), final_severity AS previous_final_severity, NULL::BOOLEAN AS triage_active,
           NULL::BIGINT AS computed_in
    FROM {{ queue_table }}
    {%- else %}
    SELECT NULL::VARCHAR AS finding_id, NULL::VARCHAR AS status, NULL::VARCHAR AS previous_status,
           NULL::BOOLEAN AS seen, NULL::VARCHAR AS application, NULL::VARCHAR AS workspace,
           NULL::VARCHAR AS repository_uuid, NULL::VARCHAR AS repository, NULL::VARCHAR AS scanner,
           NULL::VARCHAR AS rule_id, NULL::VARCHAR AS title, NULL::VARCHAR AS category, NULL::VARCHAR AS file_path,
           NULL::VARCHAR AS base_severity, NULL::VARCHAR AS final_severity, NULL::VARCHAR AS previous_final_severity,
           NULL::VARCHAR AS severity_explanation, NULL::VARCHAR[] AS controls, NULL::TIMESTAMPTZ AS first_seen,
           NULL::TIMESTAMPTZ AS last_seen, NULL::TIMESTAMPTZ AS status_changed_at, NULL::TIMESTAMPTZ AS resolved_at,
           NULL::INTEGER AS reopened_count, NULL::TIMESTAMPTZ AS sla_started_at, NULL::VARCHAR AS triage_status,
           NULL::VARCHAR AS triage_reason, NULL::VARCHAR AS triage_owner, NULL::DATE AS triage_expires,
           NULL::VARCHAR AS triage_decided_by, NULL::TIMESTAMPTZ AS triage_decided_at, NULL::BOOLEAN AS triage_active,
           NULL::BIGINT AS computed_in
    LIMIT 0
    {%- endif %}
),

triage AS (
    -- the latest decision per finding (OX_BB_HOME/triage/decisions.jsonl); `open` withdraws the earlier one
    SELECT t.finding_id, t.status AS triage_status, t.reason AS triage_reason, t.owner AS triage_owner,
           t.expires AS triage_expires, t.decided_by AS triage_decided_by, t.decided_at AS triage_decided_at,
           t.status <> 'open' AND (t.expires IS NULL OR t.expires >= CAST(ctx.now AS DATE)) AS triage_active
    FROM {{ invoker_input('triage_decisions') }} AS t, ctx
    QUALIFY row_number() OVER (PARTITION BY t.finding_id ORDER BY t.decided_at DESC, t.decision_order DESC) = 1
),

{% if is_incremental() %}
triage_changed AS (
    -- the findings whose latest triage decision, or whether it is in force today, differs from the stored one
    SELECT finding_id, coalesce(s.repository_uuid, f.repository_uuid) AS repository_uuid
    FROM triage AS t
    FULL OUTER JOIN (SELECT * FROM stored WHERE triage_status IS NOT NULL) AS s USING (finding_id)
    LEFT JOIN {{ ref('findings') }} AS f USING (finding_id)
    WHERE row(t.triage_status, t.triage_reason, t.triage_owner, t.triage_expires, t.triage_decided_by,
              t.triage_decided_at, t.triage_active)
          IS DISTINCT FROM row(s.triage_status, s.triage_reason, s.triage_owner, s.triage_expires,
                               s.triage_decided_by, s.triage_decided_at, s.triage_active)
),

rebuilt AS (
    SELECT repository_uuid FROM {{ changed_keys('findings_queue_digests', 'repository_uuid') }}
    UNION
    -- the only statuses that move with nothing changed: new and reopened become open
    SELECT repository_uuid FROM stored WHERE status IN ('new', 'reopened')
    UNION
    SELECT repository_uuid FROM triage_changed
),

rescoped AS (
    -- the repositories whose scan scopes (or what applies to all) changed: scope_complete of every finding there
    -- can move, that of a resolved one too
    SELECT repository_uuid
    FROM {{ ref('findings_queue_digests') }} AS d
    FULL OUTER JOIN {{ invoker_input('previous_findings_queue_digests') }} AS p USING (repository_uuid)
    WHERE d.scope_digest IS DISTINCT FROM p.scope_digest
),
{% endif %}

current AS (
    -- this build's findings (enriched_findings' columns, the severity explanation as stored) of what is rebuilt
    SELECT f.finding_id, f.application, f.workspace, f.repository_uuid, f.repository, f.scanner, f.rule_id,
           f.title, f.category, f.file_path, f.base_severity, s.final_severity, s.severity_explanation, f.controls,
           f.code_context, f.code_context_rule, f.code_context_effect, k.problem_id, k.is_primary, k.detected_by
    FROM {{ ref('findings') }} AS f
    JOIN {{ ref('finding_severities_base') }} AS s USING (finding_id)
    LEFT JOIN {{ ref('finding_correlations') }} AS k USING (finding_id)
    {%- if is_incremental() %}
    -- the rows by rowid, found on the narrow key column first: the wide columns only for them
    WHERE f.rowid IN (SELECT rowid FROM {{ ref('findings') }}
                      WHERE repository_uuid IN (SELECT repository_uuid FROM rebuilt))
      AND s.repository_uuid IN (SELECT repository_uuid FROM rebuilt)
    {%- endif %}
),

current_keys AS (
    -- what suppressions match on, of the same findings as current (findings with a severity row): narrow, so that
    -- current itself is read once and never materialised
    SELECT f.finding_id, f.rule_id, f.file_path, f.workspace, f.repository
    FROM {{ ref('findings') }} AS f
    WHERE f.finding_id IN (SELECT finding_id FROM {{ ref('finding_severities_base') }}
                           {%- if is_incremental() %}
                           WHERE repository_uuid IN (SELECT repository_uuid FROM rebuilt)
                           {%- endif %})
    {%- if is_incremental() %}
      AND f.rowid IN (SELECT rowid FROM {{ ref('findings') }}
                      WHERE repository_uuid IN (SELECT repository_uuid FROM rebuilt))
    {%- endif %}
),

{% if is_incremental() %}
recomputed AS (
    -- the stored rows this build computes again: the rebuilt repositories' rows, but for a finding not seen
    -- (resolved, or open or suppressed while its scan scope is incomplete), which stays as it is unless its scope or
    -- its triage changes (a repository's resolved findings pile up), or it is seen again. A finding's stored row is
    -- in its repository (the repository is part of its fingerprint, and a finding_id two repositories report fails
    -- the build), so only the rebuilt repositories' rows are looked at. By rowid, found on the narrow columns first.
    SELECT k.rowid AS stored_rowid
    FROM {{ this }} AS k
    WHERE k.repository_uuid IN (SELECT repository_uuid FROM rebuilt)
      AND (k.seen IS NOT false OR k.status IN ('new', 'reopened')
           OR k.repository_uuid IN (SELECT repository_uuid FROM rescoped)
           OR k.finding_id IN (SELECT finding_id FROM triage_changed)
           OR k.finding_id IN (SELECT finding_id FROM current_keys))
),
{% endif %}

previous AS (
    -- the rebuilt findings as the last build's findings_queue showed them
    SELECT q.* REPLACE (
               CASE WHEN q.seen THEN l.built_at ELSE q.last_seen END AS last_seen,
               CASE WHEN q.seen AND l.inactive_evidence IS NOT NULL
                    THEN replace(q.severity_explanation, {{ inactive_days_placeholder() }}, l.inactive_evidence)
                    ELSE q.severity_explanation END AS severity_explanation)
    {%- if is_incremental() %}
    FROM {{ this }} AS q
    {%- else %}
    FROM stored AS q
    {%- endif %}
    LEFT JOIN last_build AS l USING (repository_uuid)
    {%- if is_incremental() %}
    WHERE q.rowid IN (SELECT stored_rowid FROM recomputed)
    {%- endif %}
),

previous_keys AS (
    -- what suppressions match on, of the same rows as previous (the columns it keeps as stored)
    SELECT q.finding_id, q.rule_id, q.file_path, q.workspace, q.repository
    {%- if is_incremental() %}
    FROM {{ this }} AS q
    WHERE q.rowid IN (SELECT stored_rowid FROM recomputed)
    {%- else %}
    FROM stored AS q
    {%- endif %}
),

code_scopes AS (
    SELECT repository_uuid, scanner, bool_or(status = 'ok') AS complete
    FROM {{ source('lake', 'scan_runs') }}
    {%- if is_incremental() %}
    WHERE repository_uuid IN (SELECT repository_uuid FROM rebuilt)  -- every row computed is of one of them
    {%- endif %}
    GROUP BY ALL
),

posture_scopes AS (
    SELECT workspace, coalesce(repository_uuid, '') AS repository_uuid, check_id,
           bool_or(status IN ('pass', 'fail')) AS complete
    FROM {{ source('lake', 'posture_results') }}
    {%- if is_incremental() %}
    WHERE coalesce(repository_uuid, '') IN (SELECT repository_uuid FROM rebuilt)
    {%- endif %}
    GROUP BY ALL
),

merged AS (
    SELECT finding_id,
           c.finding_id IS NOT NULL AS seen,
           p.status AS previous_status,
           p.final_severity AS previous_final_severity,
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
    FROM current AS c
    FULL OUTER JOIN previous AS p USING (finding_id)
),

suppression_candidates AS (
    -- every fingerprint rebuilt, as this build and the last saw it, matched on what suppressions match on. Each side
    -- joins the few suppressions by itself: no copy of every fingerprint is made, and none is read when nothing can
    -- match.
    {%- for side in ['current_keys', 'previous_keys'] %}
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
)

SELECT
    j.finding_id, j.status, j.previous_status, j.seen, j.scope_complete,
    j.application, j.workspace, j.repository_uuid, j.repository,
    j.workspace || '/' || j.repository AS repository_full_name,
    j.scanner, j.rule_id, j.title, j.category, j.file_path,
    j.base_severity, j.final_severity, j.previous_final_severity, j.severity_explanation, j.controls,
    j.detected_by, j.correlated_into, j.excluded_by, j.code_context,
    coalesce(j.first_seen, ctx.now) AS first_seen,
    -- a seen finding's last_seen is the build's now: the view shows it, this is only what it was when computed
    CASE WHEN j.seen THEN ctx.now ELSE j.last_seen END AS last_seen,
    CASE WHEN j.status IS DISTINCT FROM j.previous_status THEN ctx.now ELSE j.status_changed_at END
        AS status_changed_at,
    CASE WHEN j.status <> 'resolved' THEN NULL
         WHEN j.previous_status = 'resolved' THEN j.resolved_at
         ELSE ctx.now END AS resolved_at,
    (coalesce(j.reopened_count, 0) + CASE WHEN j.status = 'reopened' THEN 1 ELSE 0 END)::INTEGER AS reopened_count,
    j.suppression_id, j.reason AS suppression_reason, j.owner AS suppression_owner, j.expires AS suppression_expires,
    j.triage_status, j.triage_reason, j.triage_owner, j.triage_expires, j.triage_decided_by, j.triage_decided_at,
    j.triage_active,
    CASE WHEN j.status IN ('new', 'reopened') THEN ctx.now
         ELSE coalesce(j.sla_started_at, j.first_seen, ctx.now) END AS sla_started_at,
    b.build_number AS computed_in
FROM judged AS j
CROSS JOIN ctx
CROSS JOIN (SELECT max(build_number) AS build_number FROM {{ ref('findings_queue_digests') }}) AS b
