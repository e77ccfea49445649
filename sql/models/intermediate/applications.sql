WITH ctx AS (
    SELECT * FROM {{ invoker_input('build_context') }}
),

members AS (
    SELECT DISTINCT m.application, m.parent_application, m.is_monorepo_child, m.repository_uuid
    FROM {{ ref('application_mapping') }} AS m
),

signals AS (
    SELECT m.application,
           any_value(m.parent_application) AS parent_application,
           bool_or(m.is_monorepo_child) AS is_monorepo_child,
           list(r.full_name ORDER BY r.full_name) AS repositories,
           count(*) AS repository_count,
           bool_or(r.is_public) AS is_public,
           bool_or(r.deploys_to_production) AS deploys_to_production,
           string_agg(r.full_name || ': ' || r.production_evidence, '; ' ORDER BY r.full_name)
               FILTER (WHERE r.deploys_to_production) AS production_evidence,
           sum(r.commits_recent)::BIGINT AS commits_recent,
           sum(r.contributors_recent)::BIGINT AS contributors_recent,
           min(r.days_since_code_change) AS days_since_code_change,
           bool_and(NOT r.is_relevant) AS all_irrelevant,
           list_sort(list_distinct(flatten(list(r.irrelevant_reasons)))) AS repository_reasons
    FROM members AS m
    JOIN {{ ref('repositories') }} AS r USING (repository_uuid)
    GROUP BY m.application
),

configured AS (
    SELECT c.application,
           coalesce(c.team, p.team) AS team,
           coalesce(nullif(c.owners, []), p.owners) AS owners,
           coalesce(c.data_classification, p.data_classification) AS data_classification,
           coalesce(c.business_priority, p.business_priority) AS business_priority,
           coalesce(c.irrelevant_reason, p.irrelevant_reason) AS irrelevant_reason
    FROM {{ invoker_input('config_applications') }} AS c
    LEFT JOIN {{ invoker_input('config_applications') }} AS p ON p.application = c.parent_application
),

weighed AS (
    SELECT s.*, c.team, coalesce(c.owners, []) AS owners, c.business_priority AS priority_override,
           c.irrelevant_reason,
           coalesce(c.data_classification, ctx.default_data_classification) AS data_classification,
           list_filter([
               CASE WHEN s.deploys_to_production THEN {'reason': 'deploys to production', 'weight': 2} END,
               CASE WHEN s.commits_recent >= 20 THEN {'reason': format('{} commits on main in {} days',
                   s.commits_recent, ctx.activity_window_days), 'weight': 1} END,
               CASE WHEN s.contributors_recent >= 3 THEN {'reason': format('{} contributors in {} days',
                   s.contributors_recent, ctx.activity_window_days), 'weight': 1} END,
               CASE coalesce(c.data_classification, ctx.default_data_classification)
                   WHEN 'restricted' THEN {'reason': 'restricted data', 'weight': 2}
                   WHEN 'confidential' THEN {'reason': 'confidential data', 'weight': 1}
                   WHEN 'public' THEN {'reason': 'public data only', 'weight': -1}
               END
           ], lambda signal: signal IS NOT NULL) AS priority_signals
    FROM signals AS s
    CROSS JOIN ctx
    LEFT JOIN configured AS c ON c.application = s.application
),

scored AS (
    SELECT *,
           CASE
               WHEN list_sum([x.weight FOR x IN priority_signals]) >= 4 THEN 'critical'
               WHEN list_sum([x.weight FOR x IN priority_signals]) >= 2 THEN 'high'
               WHEN coalesce(list_sum([x.weight FOR x IN priority_signals]), 0) >= 0 THEN 'medium'
               ELSE 'low'
           END AS business_priority_computed
    FROM weighed
)

SELECT
    application, parent_application, is_monorepo_child, repositories, repository_count,
    team, owners, data_classification, is_public, deploys_to_production, production_evidence,
    commits_recent, contributors_recent, days_since_code_change,
    business_priority_computed,
    coalesce(priority_override, business_priority_computed) AS business_priority,
    CASE WHEN priority_override IS NULL THEN 'computed' ELSE 'override' END AS business_priority_source,
    CASE
        WHEN priority_override IS NOT NULL THEN ['set in applications.yaml']
        WHEN len(priority_signals) = 0 THEN ['no production deployment, little recent activity, internal data']
        ELSE [format('{} ({}{})', x.reason, CASE WHEN x.weight > 0 THEN '+' ELSE '' END, x.weight)
              FOR x IN priority_signals]
    END AS business_priority_reasons,
    CASE
        WHEN irrelevant_reason IS NOT NULL THEN ['marked irrelevant in applications.yaml: ' || irrelevant_reason]
        WHEN all_irrelevant THEN repository_reasons
        ELSE []
    END AS irrelevant_reasons,
    irrelevant_reason IS NULL AND NOT all_irrelevant AS is_relevant
FROM scored
