{#- Incremental by repository: a build deletes and recomputes the rows of the repositories whose severity inputs
    changed (finding_severity_digests, macro changed_severity_repositories) and of any repository no longer
    reported; the first build, and every build after a change of the factor catalog or of this SQL, computes them
    all. inactive_repository's "N days" is stored as a placeholder (see the finding_severities view). -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='sync_all_columns',
          pre_hook="{% if is_incremental() %}DELETE FROM {{ this }} WHERE repository_uuid IN "
                   "{{ changed_severity_repositories() }} OR repository_uuid NOT IN "
                   "(SELECT repository_uuid FROM {{ ref('finding_severity_digests') }}){% endif %}") }}
-- depends_on: {{ ref('finding_severity_digests') }}
WITH catalog AS MATERIALIZED (
    -- a factor is carried through the lists below as {pos, evidence}: pos numbers the catalog by factor_order
    -- (the runner numbers the catalog 1..n, so it is unique), and the rest of the catalog entry is looked up by
    -- pos only where needed. Sorting {pos, evidence} orders exactly as the whole entry would: factor_order
    -- first, then the evidence (everything else follows from factor_order and evidence). list() of wide
    -- structs (lists of applies_to structs inside) was most of this model's cost.
    SELECT row_number() OVER (ORDER BY c.factor_order) AS pos, c.*, l.severity_rank AS at_least_rank,
           CASE c.direction WHEN 'up' THEN c.steps WHEN 'down' THEN -c.steps ELSE 0 END AS delta
    FROM {{ invoker_input('config_severity_factors') }} AS c
    LEFT JOIN {{ invoker_input('config_severity_levels') }} AS l ON l.severity = c.at_least
),

catalog_lists AS (
    -- the entries by pos; blockers[pos]: the entries whose condition switches entry pos off (except_when)
    SELECT CASE WHEN count(DISTINCT c.factor_order) = count(*) AND count(c.factor_order) = count(*)
                THEN list(c.name ORDER BY c.pos)
                ELSE error('config_severity_factors: factor_order must be set and unique (the runner numbers '
                           || 'the factor catalog 1..n); rebuild the warehouse with the runner')
           END AS names,
           list(c.direction ORDER BY c.pos) AS directions,
           list(c.steps ORDER BY c.pos) AS steps,
           list(c.delta ORDER BY c.pos) AS deltas,
           list(c.at_least_rank ORDER BY c.pos) AS at_least_ranks,
           list(c.sentence ORDER BY c.pos) AS sentences,
           list(CASE WHEN c.except_when IS NOT NULL
                     THEN [b.pos FOR b IN (SELECT list({'pos': pos, 'condition': condition}) FROM catalog)
                           IF list_contains(c.except_when, b.condition)] END ORDER BY c.pos) AS blockers
    FROM catalog AS c
),

factors AS (
    -- the catalog's verdict on each condition that holds; an incremental build needs only the evidence of the
    -- repositories it rebuilds and of their findings (repository_uuid: the finding's own, so exactly the findings in
    -- scope below), and the applications' (no repository_uuid; few rows): grouping all findings' was most of its cost
    SELECT e.scope, e.subject,
           {'pos': c.pos,
            -- the days of inactivity change daily by themselves: a placeholder here, today's value in the view
            'evidence': CASE WHEN e.condition = 'inactive_repository' THEN {{ inactive_days_placeholder() }}
                             ELSE e.evidence END} AS factor
    FROM {{ ref('severity_evidence') }} AS e
    JOIN catalog AS c USING (condition)
    {%- if is_incremental() %}
    WHERE e.repository_uuid IS NULL OR e.repository_uuid IN {{ changed_severity_repositories() }}
    {%- endif %}
),

repository_factors AS (
    SELECT subject AS repository_uuid, list(factor) AS factors FROM factors WHERE scope = 'repository' GROUP BY ALL
),

application_factors AS (
    SELECT subject AS application, list(factor) AS factors FROM factors WHERE scope = 'application' GROUP BY ALL
),

finding_factors AS (
    SELECT subject AS finding_id, list(factor) AS factors FROM factors WHERE scope = 'finding' GROUP BY ALL
),

findings_in_scope AS {{ "MATERIALIZED" if is_incremental() else "NOT MATERIALIZED" }} (
    -- read four times below (each path, relevance): a full build scans findings each time (cheaper than a
    -- materialised copy of them all), an incremental one keeps its few rebuilt repositories' (four scans of every
    -- finding, filtered to those, cost more)
    SELECT finding_id, rule_id, category, exploitable, base_severity, repository_uuid, application
    FROM {{ ref('findings') }}
    {%- if is_incremental() %}
    WHERE repository_uuid IN {{ changed_severity_repositories() }}
    {%- endif %}
),

held_sets AS (
    -- what a finding holds depends only on its repository, application, category and exploitability unless it
    -- has factors of its own (most findings have none): those findings one by one, the others once per such
    -- context (`own` false), joined back in per_finding; the same list_concat as for a single finding
    SELECT true AS own, f.finding_id, f.rule_id, f.category, f.exploitable, f.base_severity, f.repository_uuid,
           f.application,
           list_concat(coalesce(r.factors, []), coalesce(a.factors, []), coalesce(x.factors, [])) AS held
    FROM findings_in_scope AS f
    JOIN finding_factors AS x ON x.finding_id = f.finding_id
    LEFT JOIN repository_factors AS r ON r.repository_uuid = f.repository_uuid
    LEFT JOIN application_factors AS a ON a.application = f.application
    UNION ALL
    SELECT false AS own, NULL, NULL, k.category, k.exploitable, NULL, k.repository_uuid, k.application,
           list_concat(coalesce(r.factors, []), coalesce(a.factors, []), []) AS held
    FROM (SELECT DISTINCT category, exploitable, repository_uuid, application FROM findings_in_scope) AS k
    LEFT JOIN repository_factors AS r ON r.repository_uuid = k.repository_uuid
    LEFT JOIN application_factors AS a ON a.application = k.application
),

relevance AS (
    -- the entries relevant to a category and exploitability (a scope names the category, exploitable
    -- weaknesses only if it says so)
    SELECT k.category, k.exploitable,
           coalesce(list(c.pos) FILTER (WHERE len([s FOR s IN c.applies_to
                                                   IF s.category = k.category
                                                   AND (NOT s.exploitable_only OR k.exploitable)]) > 0),
                    []) AS positions
    FROM (SELECT DISTINCT category, exploitable FROM findings_in_scope) AS k
    CROSS JOIN catalog AS c
    GROUP BY k.category, k.exploitable
),

applied AS (
    -- relevant to the finding and not switched off by another condition that holds for it
    SELECT c.* EXCLUDE (held, held_positions, relevant),
           list_sort(list_filter(c.held, lambda k:
               list_contains(c.relevant, k.pos) AND NOT list_has_any(cat.blockers[k.pos], c.held_positions)))
               AS applied_factors
    FROM (SELECT h.*, [k.pos FOR k IN h.held] AS held_positions, coalesce(r.positions, []) AS relevant
          FROM held_sets AS h
          LEFT JOIN relevance AS r
              ON r.category IS NOT DISTINCT FROM h.category AND r.exploitable IS NOT DISTINCT FROM h.exploitable)
         AS c
    CROSS JOIN catalog_lists AS cat
),

summaries AS (
    -- everything the output needs from the applied factors, once per held set
    SELECT a.* EXCLUDE (applied_factors),
           len(a.applied_factors) AS applied_count,
           coalesce(list_sum([cat.deltas[k.pos] FOR k IN a.applied_factors]), 0)::INTEGER AS delta,
           array_to_string([replace(cat.sentences[k.pos], '{evidence}', coalesce(k.evidence, ''))
                            FOR k IN a.applied_factors], '; ') AS reasons,
           coalesce(list_max([cat.at_least_ranks[k.pos] FOR k IN a.applied_factors]), 0) AS at_least_rank,
           [{'name': cat.names[k.pos], 'direction': cat.directions[k.pos], 'steps': cat.steps[k.pos],
             'evidence': k.evidence}
            FOR k IN a.applied_factors] AS factor_list
    FROM applied AS a
    CROSS JOIN catalog_lists AS cat
),

per_finding AS (
    SELECT finding_id, rule_id, base_severity, repository_uuid, application,
           applied_count, delta, reasons, at_least_rank, factor_list
    FROM summaries WHERE own
    UNION ALL
    -- a NULL key part matches NULL (the findings grouped there share one held set)
    SELECT f.finding_id, f.rule_id, f.base_severity, f.repository_uuid, f.application,
           s.applied_count, s.delta, s.reasons, s.at_least_rank, s.factor_list
    FROM findings_in_scope AS f
    JOIN summaries AS s
        ON NOT s.own AND s.category IS NOT DISTINCT FROM f.category
        AND s.exploitable IS NOT DISTINCT FROM f.exploitable
        AND s.repository_uuid IS NOT DISTINCT FROM f.repository_uuid
        AND s.application IS NOT DISTINCT FROM f.application
    WHERE NOT EXISTS (SELECT 1 FROM factors AS x WHERE x.scope = 'finding' AND x.subject = f.finding_id)
),

ranked AS (
    SELECT p.*,
           coalesce(b.severity_rank, 2) AS base_rank,
           coalesce(b.label, p.base_severity) AS base_label
    FROM per_finding AS p
    LEFT JOIN {{ invoker_input('config_severity_levels') }} AS b ON b.severity = p.base_severity
),

final AS (
    -- context never turns a finding into `info`: the floor is low (or info when it started there);
    -- raising stops one step above the base severity, unless a factor lifts it to `at_least`
    SELECT *,
           greatest(least(base_rank, 1), least(4, base_rank + 1, base_rank + delta), at_least_rank) AS factor_rank
    FROM ranked
),

workflow_severity AS (
    SELECT d.finding_id, d.rule, d.reason, l.severity_rank
    FROM {{ invoker_input('workflow_decisions') }} AS d
    JOIN {{ invoker_input('config_severity_levels') }} AS l ON l.severity = d.new
    WHERE d.field = 'final_severity'
    QUALIFY row_number() OVER (PARTITION BY d.finding_id ORDER BY d.decided_at DESC, d.rule) = 1
),

decided AS (
    SELECT f.*, w.rule AS workflow_rule, w.reason AS workflow_reason,
           coalesce(w.severity_rank, f.factor_rank) AS final_rank
    FROM final AS f
    LEFT JOIN workflow_severity AS w USING (finding_id)
)

SELECT
    f.finding_id,
    f.repository_uuid,
    a.team, a.owners, a.business_priority, coalesce(a.is_relevant, true) AS application_is_relevant,
    f.delta AS severity_steps,
    l.severity AS final_severity,
    f.final_rank AS severity_rank,
    -- factor_list is never NULL, so list_concat with the NULL of no workflow is factor_list itself
    CASE WHEN f.workflow_rule IS NULL THEN f.factor_list ELSE list_concat(
        f.factor_list,
        CASE WHEN f.workflow_rule IS NOT NULL THEN
            [{'name': 'workflow:' || f.workflow_rule,
              'direction': CASE WHEN f.final_rank > f.factor_rank THEN 'up'
                                WHEN f.final_rank < f.factor_rank THEN 'down' ELSE 'explain' END,
              'steps': abs(f.final_rank - f.factor_rank), 'evidence': f.workflow_reason}]
        END) END AS severity_factors,
    CASE
        WHEN f.applied_count = 0
            THEN f.base_label || ': the base severity of rule ' || f.rule_id || '; no severity factor applies'
        WHEN f.factor_rank = f.base_rank
            THEN f.base_label || ' (unchanged): ' || f.reasons
        ELSE f.base_label || ' → ' || fl.label || ': ' || f.reasons
    END
    || CASE WHEN least(4, f.base_rank + f.delta) > f.factor_rank THEN ' (raised one step at most)' ELSE '' END
    || CASE
        WHEN f.workflow_rule IS NULL THEN ''
        ELSE '; workflow ''' || f.workflow_rule || ''' '
             || CASE WHEN f.final_rank > f.factor_rank THEN 'raised it to '
                     WHEN f.final_rank < f.factor_rank THEN 'lowered it to ' ELSE 'kept it at ' END
             || l.label || ': ' || f.workflow_reason
    END AS severity_explanation,
    f.workflow_rule AS severity_set_by_rule
FROM decided AS f
JOIN {{ invoker_input('config_severity_levels') }} AS fl ON fl.severity_rank = f.factor_rank
JOIN {{ invoker_input('config_severity_levels') }} AS l ON l.severity_rank = f.final_rank
LEFT JOIN {{ ref('applications') }} AS a USING (application)
